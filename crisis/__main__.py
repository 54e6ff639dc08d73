"""`python -m crisis` is the `crisis` command."""

import sys

from crisis.cli import main

sys.exit(main())
