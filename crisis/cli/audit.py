"""`crisis audit verify [CRISIS_ID]`: check the log's hash chains (exit 0 valid, 1 broken)."""

from __future__ import annotations

import argparse

from crisis.cli.lazy import lazy


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="proofs about the log").add_subparsers(
        dest="audit_command", required=True, metavar="AUDIT_COMMAND"
    )
    verify = audit.add_parser(
        "verify",
        help="check the hash chain of one crisis or of the whole log, reading the topic through Kafka "
        "(CRISIS_BUS_URL or CRISIS_KAFKA_BOOTSTRAP); names the first broken link; exit 1 when broken",
    )
    verify.add_argument("crisis_id", nargs="?", metavar="CRISIS_ID", help="one crisis (default: all)")
    verify.add_argument("--json", action="store_true", help="print the verdict as JSON")
    verify.set_defaults(run=lazy("crisis.cli.auditing", "verify_command"))
