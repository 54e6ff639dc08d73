"""`crisis schemas`: write the generated contracts."""

from __future__ import annotations

import argparse
from pathlib import Path


def _schemas(args: argparse.Namespace) -> int:
    from crisis.contracts import write

    for path in write(args.out):
        print(path)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schemas = sub.add_parser(
        "schemas", help="write JSON Schemas per event type, the AsyncAPI and OpenAPI documents"
    )
    schemas.add_argument("--out", type=Path, default=Path("schemas"))
    schemas.set_defaults(run=_schemas)
