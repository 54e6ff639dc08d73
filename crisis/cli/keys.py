"""`crisis keys add|list|revoke`: API keys bound to an organisation and a role."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from crisis.domain.enums import Role

if TYPE_CHECKING:
    from crisis.keys import KeyStore

_DURATION = re.compile(r"^(\d+)([mhd])$")


def parse_duration(text: str) -> timedelta:
    """`30m`, `12h`, `90d`."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration like 30m, 12h or 90d")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(minutes=amount) if unit == "m" else timedelta(hours=amount * (24 if unit == "d" else 1))


def _store(args: argparse.Namespace) -> KeyStore:
    from crisis.config import Settings
    from crisis.keys import KeyStore

    path: Path = args.keys_file or Settings().keys_file
    return KeyStore(path)


def _register(args: argparse.Namespace, store: KeyStore) -> bool:
    """A key names a registered organisation: an unknown one is registered, and said so, when a registry
    exists (`crisis up` creates it); without a registry every organisation name is accepted."""
    from pydantic import ValidationError

    from crisis.config import Settings
    from crisis.orgs import OrgRegistry

    registry = OrgRegistry(args.orgs_file or Settings().orgs_file)
    if not registry.exists or registry.known(args.org):
        return True
    try:
        registry.add(args.org, label=f"registered with a key in {store.path}")
    except ValidationError as exc:
        print(f"error: {exc.errors()[0]['msg']} (org {args.org!r})", file=sys.stderr)
        return False
    print(f"registered organisation {args.org} in {registry.path}", file=sys.stderr)
    return True


def _add(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from crisis.domain.envelope import utcnow

    store = _store(args)
    if not _register(args, store):
        return 2
    expires = utcnow() + args.expires_in if args.expires_in else None
    try:
        record, key = store.add(
            args.org, Role(args.role), expires_at=expires, exercise_only=args.exercise_only, label=args.label
        )
    except ValidationError as exc:
        print(f"error: {exc.errors()[0]['msg']} (org {args.org!r})", file=sys.stderr)
        return 2
    print(f"key {record.id} for {record.org} as {record.role} in {store.path}", file=sys.stderr)
    if record.expires_at:
        print(f"expires {record.expires_at.isoformat()}", file=sys.stderr)
    print(key)  # alone on the last line of stdout, for scripts
    return 0


def _list(args: argparse.Namespace) -> int:
    from crisis.domain.envelope import utcnow

    now = utcnow()
    for r in _store(args).list():
        state = "revoked" if r.revoked_at else ("expired" if not r.valid_at(now) else "active")
        extra = " exercise-only" if r.exercise_only else ""
        expires = r.expires_at.isoformat() if r.expires_at else "never"
        print(f"{r.id}  {r.org:<20} {r.role:<12} {state:<8} expires {expires}{extra}  {r.label}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        record = _store(args).revoke(args.key_id)
    except KeyError:
        print(f"error: no key {args.key_id}", file=sys.stderr)
        return 2
    print(f"revoked {record.id} ({record.org}, {record.role})")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--keys-file", type=Path, help="keys file (default: CRISIS_KEYS_FILE or .crisis/keys.json)"
    )

    add = keys.add_parser("add", parents=[common], help="create a key; prints it alone on the last line")
    add.add_argument("--org", required=True)
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--expires-in", type=parse_duration, help="e.g. 90d, 12h")
    add.add_argument("--exercise-only", action="store_true", help="an exercise controller's key")
    add.add_argument("--label", default="")
    add.add_argument("--orgs-file", type=Path, help="organisations registry (default: CRISIS_ORGS_FILE)")
    add.set_defaults(run=_add)

    keys.add_parser("list", parents=[common], help="list keys (never the keys themselves)").set_defaults(
        run=_list
    )

    revoke = keys.add_parser("revoke", parents=[common], help="revoke a key by id")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=_revoke)
