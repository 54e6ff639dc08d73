"""Commands bound by name: the parser is built without importing what the commands need."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable


def lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A `run` for set_defaults that imports `module` only when the command runs."""

    def run(args: argparse.Namespace) -> int:
        command: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), name)
        return command(args)

    return run
