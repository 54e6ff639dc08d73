"""`crisis orgs add|list`: the registry of organisations that TLP recipients and keys name."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crisis.orgs import OrgRegistry


def _registry(args: argparse.Namespace) -> OrgRegistry:
    # Imported here: `crisis --help` loads no settings or models.
    from crisis.config import Settings
    from crisis.orgs import OrgRegistry

    path: Path = args.orgs_file or Settings().orgs_file
    return OrgRegistry(path)


def _add(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    registry = _registry(args)
    status = 0
    for name in args.names:
        try:
            record, new = registry.add(name, label=args.label)
        except ValidationError as exc:
            print(f"error: {exc.errors()[0]['msg']} (org {name!r})", file=sys.stderr)
            status = 2
            continue
        print(f"{record.name}: {'registered' if new else 'already registered'} in {registry.path}")
    return status


def _list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    if not registry.exists:
        print(f"no registry at {registry.path}: every organisation name is accepted", file=sys.stderr)
        return 0
    for r in registry.list():
        print(f"{r.name:<24} added {r.added_at.isoformat()}  {r.label}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    orgs = sub.add_parser("orgs", help="manage the registry of organisations").add_subparsers(
        dest="orgs_command", required=True
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--orgs-file", type=Path, help="registry file (default: CRISIS_ORGS_FILE or .crisis/orgs.json)"
    )
    add = orgs.add_parser("add", parents=[common], help="register organisations by name")
    add.add_argument("names", nargs="+", metavar="ORG")
    add.add_argument("--label", default="")
    add.set_defaults(run=_add)
    orgs.add_parser("list", parents=[common], help="list registered organisations").set_defaults(run=_list)
