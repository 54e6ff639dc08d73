"""`crisis tail`: the live stream in the terminal, one readable line per message (or raw JSON lines)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from crisis.cli import output
from crisis.cli.errors import CliError
from crisis.endpoints import DEFAULT_STREAM_URL, STREAM_URL_ENV
from crisis.terminal import printable

if TYPE_CHECKING:
    from crisis.client.stream import Message

# Attempts at the first connection before saying nothing answers (later drops are retried for ever).
CONNECT_ATTEMPTS = 4
# Characters of an id shown by default: unique in practice, and `crisis ack` / `crisis status` take any
# unique prefix (`--full-ids` shows whole ids).
SHORT_ID = 8


def describe(message: Message, id_width: int = SHORT_ID) -> str:
    """One line for a person: time, type, crisis, handling, then what happened; no control characters.

    Ids are cut to `id_width` characters (0: whole)."""

    def short(value: object) -> str:
        text = str(value or "-")
        return text[:id_width] if id_width else text

    return printable(_describe(message, short))


def _describe(message: Message, _short: Callable[[object], str]) -> str:
    body = message.body
    if message.type == "state":
        crisis = body.get("crisis") or {}
        return f"{'now':>8}  {'state':<22} {_short(crisis.get('id'))}  {_crisis_line(crisis)}"
    if message.type == "gap":
        return f"{'':>8}  {'GAP':<22} {body.get('reason')}: {body.get('missing')}  {body.get('detail', '')}"
    if not message.is_event:
        return f"{'':>8}  {message.type:<22} {json.dumps(body)[:120]}"
    marks = f"TLP:{str(body.get('tlp', '')).upper()}"
    if body.get("mode") == "exercise":
        marks += " EXERCISE"
    when, crisis = _clock(body.get("time")), _short(message.subject)
    return f"{when}  {message.type:<22} {crisis}  {marks:<13} {_what(message, _short)}"


def _what(message: Message, _short: Callable[[object], str]) -> str:
    data = message.data
    if message.type.startswith("crisis."):
        text = _crisis_line(data.get("crisis") or {})
        reason = (data.get("transition") or {}).get("reason")
        return f"{text}  ({reason})" if reason else text
    if message.type == "indicator.shared":
        value = str(data.get("canonical", ""))
        value = value if len(value) <= 72 else value[:69] + "..."
        return f"{data.get('kind')} {value}  by {data.get('shared_by')}  [{_short(data.get('indicator_id'))}]"
    if message.type == "indicator.sighted":
        return f"{data.get('kind')} again by {data.get('sighted_by')}  [{_short(data.get('indicator_id'))}]"
    if message.type == "indicator.retracted":
        return f"[{_short(data.get('indicator_id'))}] retracted by {data.get('retracted_by')}"
    if message.type == "action.reported":
        note = f"  ({data['note']})" if data.get("note") else ""
        return f"{data.get('provider_org')} {data.get('outcome')} [{_short(data.get('indicator_id'))}]{note}"
    return json.dumps(data)[:120]


def _crisis_line(crisis: dict[str, Any]) -> str:
    level = f" level {crisis['level']}" if crisis.get("level") else ""
    return f'"{crisis.get("title", "")}" {crisis.get("status", "")}{level} v{crisis.get("version", "?")}'


def _clock(value: object) -> str:
    try:
        return datetime.fromisoformat(str(value)).strftime("%H:%M:%S")
    except ValueError:
        return "--:--:--"


async def tail(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from crisis.client.stream import stream
    from crisis.endpoints import stream_url

    options: dict[str, Any] = {
        "crises": args.crisis,
        "types": args.type,
        "kinds": args.kind,
        "mode": args.mode,
        "cursor": args.cursor,
        "control": True,
        "connect_attempts": CONNECT_ATTEMPTS,
    }
    shown = 0
    width = 0 if args.full_ids else SHORT_ID
    async with stream(stream_url(args.url), args.key, **options) as events:
        try:
            async for message in events:
                line = json.dumps(message.body) if args.json else describe(message, width)
                print(line, file=out, flush=True)
                shown += 1 if message.is_event else 0
                if args.count and shown >= args.count:
                    break
        finally:
            if events.cursor and not args.json:
                print(f"# resume with --cursor {events.cursor}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from crisis.client.stream import StreamRefused

    if not args.key:
        raise CliError("no API key: pass --key or set CRISIS_KEY")
    output.for_client_command()
    try:
        return asyncio.run(tail(args))
    except StreamRefused as exc:
        raise CliError(f"the gateway refused the stream: {printable(exc)}") from None


def _listed(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tail", help="print the live stream (resumes by itself after a disconnect)")
    p.add_argument("--url", help=f"the gateway's stream (env {STREAM_URL_ENV}; default {DEFAULT_STREAM_URL})")
    p.add_argument("--key", default=os.environ.get("CRISIS_KEY", ""), help="API key (env CRISIS_KEY)")
    p.add_argument("--crisis", type=_listed, action="extend", help="crisis ids (comma-separated, repeatable)")
    p.add_argument(
        "--type", type=_listed, action="extend", help="event types, e.g. indicator.shared,crisis.*"
    )
    p.add_argument("--kind", type=_listed, action="extend", help="indicator kinds, e.g. sha256,url")
    p.add_argument("--mode", choices=["live", "exercise", "both"], default="live")
    p.add_argument("--cursor", help="continue right after the event that carried this cursor")
    p.add_argument("--json", action="store_true", help="one raw JSON message per line")
    p.add_argument(
        "--full-ids", action="store_true", help=f"whole ids (default: the first {SHORT_ID} characters)"
    )
    p.add_argument("--count", type=int, default=0, help="stop after this many events (default: never)")
    p.set_defaults(run=_run)
