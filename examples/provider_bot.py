"""A provider bot: takes indicators from the live stream, acknowledges each, acts, and reports the outcome.

    export CRISIS_KEY=cb_...          # a provider key: crisis keys add --org vidshare --role provider
    python examples/provider_bot.py --stream ws://127.0.0.1:8001/v1/stream --api http://127.0.0.1:8000

The one-hour clock runs from `indicator.shared` to this bot's `received`, then to its outcome. A sighting
(`indicator.sighted`, the same indicator shared again) names the existing indicator and is acknowledged
like it; an acknowledgement the API refuses is printed as refused, never as done. The cursor
is saved after each indicator (--state), so a restarted bot continues exactly where it stopped; reports
carry an Idempotency-Key made from the indicator and the outcome, so a repeat never makes a second one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from crisis.client import INDICATOR_EVENTS, Message, stream

Decide = Callable[[Message], Awaitable[tuple[str, str]]]


async def decide(event: Message) -> tuple[str, str]:
    """Stand-in for the platform's own work: hashes go to the upload filter, URLs are taken down."""
    kind = event.data.get("kind")
    if kind == "url":
        return "removed", "taken down"
    if kind == "metadata":
        return "no_action", "metadata kept for review"
    return "blocked", f"{kind} added to the upload filter"


async def report(http: httpx.AsyncClient, event: Message, outcome: str, note: str = "") -> int:
    """POST one action; retried on 503 (Kafka unavailable) with the same Idempotency-Key."""
    indicator_id = event.data["indicator_id"]
    body = {"indicator_id": indicator_id, "outcome": outcome, "note": note}
    headers = {"Idempotency-Key": f"{indicator_id}-{outcome}"}
    for attempt in range(5):
        r = await http.post(f"/v1/crises/{event.subject}/actions", json=body, headers=headers)
        if r.status_code != 503:
            if r.status_code >= 400:
                print(
                    f"  {outcome} for {indicator_id[:8]} refused: {r.status_code} {r.text[:200]}",
                    file=sys.stderr,
                )
            return r.status_code
        await asyncio.sleep(0.2 * 2**attempt)
    return 503


async def run(
    stream_url: str,
    api_url: str,
    key: str,
    *,
    cursor: str | None = None,
    state: Path | None = None,
    kinds: list[str] | None = None,
    mode: str = "live",
    limit: int = 0,
    act: Decide = decide,
) -> int:
    """Handle indicators until stopped (or `limit` of them); returns how many were handled."""
    handled = 0
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(base_url=api_url, headers=headers, timeout=15) as http,
        stream(stream_url, key, types=INDICATOR_EVENTS, kinds=kinds, mode=mode, cursor=cursor) as events,
    ):
        async for event in events:
            received = await report(http, event, "received")
            outcome, note = await act(event)
            status = await report(http, event, outcome, note)
            done = outcome if received < 300 and status < 300 else f"{outcome} NOT recorded ({status})"
            print(
                f"{event.subject} {event.type} {event.data.get('kind')} {event.data['indicator_id']}: {done}"
            )
            if state is not None and event.cursor:
                await asyncio.to_thread(state.write_text, event.cursor)
            handled += 1
            if limit and handled >= limit:
                break
    return handled


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stream", default="ws://127.0.0.1:8001/v1/stream")
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--key", default=os.environ.get("CRISIS_KEY", ""))
    parser.add_argument(
        "--state", type=Path, default=Path(".provider-bot.cursor"), help="where the cursor is kept"
    )
    parser.add_argument("--kind", action="append", help="only these indicator kinds (repeatable)")
    parser.add_argument("--mode", choices=["live", "exercise", "both"], default="live")
    args = parser.parse_args()
    if not args.key:
        parser.error("a provider key is needed: --key or CRISIS_KEY")
    cursor = args.state.read_text().strip() or None if args.state.exists() else None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run(
                args.stream,
                args.api,
                args.key,
                cursor=cursor,
                state=args.state,
                kinds=args.kind,
                mode=args.mode,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
