"""`crisis transparency --from --to [--format md|html|json]`: the TLP:CLEAR figures, from the API."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from crisis.cli import output
from crisis.cli.errors import CliError
from crisis.endpoints import API_URL_ENV


def _moment(text: str) -> str:
    """A date or an RFC 3339 time; one without a zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or time: {text!r} (e.g. 2026-01-31)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _run(args: argparse.Namespace) -> int:
    from crisis.client.http import Client

    output.for_client_command()
    if not args.key:
        raise CliError("no API key: pass --key or set CRISIS_KEY (a coordinator's key)")
    query = urlencode({"from": args.start, "to": args.end, "format": args.format})
    with Client(args.api, args.key) as api:
        response = api.request("GET", f"/v1/transparency?{query}")
    if args.output:
        try:
            args.output.write_bytes(response.content)
        except OSError as exc:
            raise CliError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(response.text if response.text.endswith("\n") else response.text + "\n")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser(
        "transparency", help="TLP:CLEAR figures across the live crises opened in a period (coordinators)"
    )
    report.add_argument("--from", dest="start", type=_moment, required=True, help="start (date or time, UTC)")
    report.add_argument("--to", dest="end", type=_moment, required=True, help="end, excluded")
    report.add_argument("--format", choices=["md", "html", "json"], default="md")
    report.add_argument("--output", "-o", type=Path, help="write to this file instead of stdout")
    report.add_argument("--api", help=f"API base URL (env {API_URL_ENV}, default http://127.0.0.1:8000)")
    report.add_argument("--key", default=os.environ.get("CRISIS_KEY", ""), help="env CRISIS_KEY")
    report.set_defaults(run=_run)
