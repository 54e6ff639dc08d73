"""What `crisis audit verify` runs (imported only then)."""

from __future__ import annotations

import argparse
import asyncio
import json

from crisis.audit.log import records
from crisis.audit.verify import Record, Verdict, verify
from crisis.bus.adapters import open_bus
from crisis.cli import output
from crisis.cli.errors import CliError
from crisis.config import Settings


async def _read(settings: Settings) -> list[Record]:
    async with open_bus(settings) as bus:
        return [record async for record in records(bus)]


def describe(verdict: Verdict) -> list[str]:
    lines = []
    for crisis_id, state in sorted(verdict.crises.items()):
        b = state.broken
        if b is None:
            lines.append(f"{crisis_id}: valid, {state.events} events, head {state.head}")
        else:
            lines.append(
                f"{crisis_id}: BROKEN at partition {b.partition} offset {b.offset} event {b.event_id}: "
                f"{b.reason}; expected {b.expected or '-'}, found {b.found or '-'}"
            )
    return lines


def verify_command(args: argparse.Namespace) -> int:
    output.for_client_command()
    verdict = verify(asyncio.run(_read(Settings())), args.crisis_id)
    if args.crisis_id and not verdict.crises:
        raise CliError(f"no event of crisis {args.crisis_id} in the log")
    if args.json:
        print(json.dumps(verdict.as_json(), indent=2))
    else:
        print("\n".join(describe(verdict)) or "the log holds no events")
    return 0 if verdict.valid else 1
