"""The `crisis` command: each module of this package adds its subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from crisis.cli import exercise, keys, officer, orgs, servers, tail, tools


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="crisis", description="crisis-bus: real-time coordination for online crisis response."
    )
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (servers, keys, orgs, officer, tail, exercise, tools):
        module.register(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
