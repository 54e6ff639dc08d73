"""`python -m crisis.cli` is the `crisis` command."""

import sys

from crisis.cli import main

sys.exit(main())
