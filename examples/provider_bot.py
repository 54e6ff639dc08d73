"""A provider bot: takes indicators from the live stream, acknowledges each, acts, and reports the outcome.

    export CRISIS_KEY=cb_...          # a provider key: crisis keys add --org vidshare --role provider
    python examples/provider_bot.py   # CRISIS_API_URL / CRISIS_STREAM_URL, or --api / --stream

The clock runs from `indicator.shared` to this bot's `received`, then to its outcome (one hour each unless
the crisis sets other deadlines); a `clock.overdue` for this organisation says a deadline passed. A bot
started without a saved cursor first handles every indicator shared earlier in the crises still open
(`--no-backfill` to take only new ones). A sighting
(`indicator.sighted`, the same indicator shared again) names the existing indicator and is acknowledged
like it; an acknowledgement the API refuses is printed as refused, never as done. The cursor
is saved after each indicator (--state), so a restarted bot continues exactly where it stopped; reports
carry an Idempotency-Key made from the indicator and the outcome, so a repeat never makes a second one.
When a dispute ends with the indicator `retracted` (`dispute.resolved`), the bot undoes its action and
reports `reinstated`.
The HTTP calls go through `crisis.client.AsyncClient`, with the project's one retry policy (429 and 503
after their Retry-After, connection errors with backoff).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from crisis.client import INDICATOR_EVENTS, ApiError, AsyncClient, Message, stream
from crisis.endpoints import DEFAULT_API_URL, DEFAULT_STREAM_URL, api_url, stream_url

Decide = Callable[[Message], Awaitable[tuple[str, str]]]


async def decide(event: Message) -> tuple[str, str]:
    """Stand-in for the platform's own work: hashes go to the upload filter, URLs are taken down."""
    kind = event.data.get("kind")
    if kind == "url":
        return "removed", "taken down"
    if kind == "metadata":
        return "no_action", "metadata kept for review"
    return "blocked", f"{kind} added to the upload filter"


async def reinstate(event: Message) -> str:
    """Stand-in for undoing the platform's action on a retracted indicator: restore the content."""
    return f"reinstated after the dispute was retracted by {event.data.get('resolved_by')}"


async def report(api: AsyncClient, event: Message, outcome: str, note: str = "") -> int:
    """POST one action; the client retries it with the same Idempotency-Key, so it is made once."""
    indicator_id = event.data["indicator_id"]
    body = {"indicator_id": indicator_id, "outcome": outcome, "note": note}
    try:
        response = await api.request(
            "POST",
            f"/v1/crises/{event.subject}/actions",
            json=body,
            idempotency_key=f"{indicator_id}-{outcome}",
        )
    except ApiError as exc:
        print(f"  {outcome} for {indicator_id[:8]} refused: {exc}", file=sys.stderr)
        return exc.status
    return response.status_code


async def run(
    stream_at: str | None,
    api: str | None,
    key: str,
    *,
    cursor: str | None = None,
    state: Path | None = None,
    kinds: list[str] | None = None,
    mode: str = "live",
    limit: int = 0,
    act: Decide = decide,
    undo: Callable[[Message], Awaitable[str]] = reinstate,
    backfill: bool = True,
    crises: list[str] | None = None,
) -> int:
    """Handle indicators and retractions until stopped (or `limit` of them); returns how many."""
    handled = 0
    async with (
        AsyncClient(api, key, timeout=15) as http,
        stream(
            stream_url(stream_at),
            key,
            crises=crises,
            types=[*INDICATOR_EVENTS, "dispute.resolved"],
            kinds=kinds,
            mode=mode,
            cursor=cursor,
            backfill=backfill,
        ) as events,
    ):
        async for event in events:
            if event.type == "dispute.resolved":
                if event.data.get("outcome") != "retracted":
                    continue  # a confirmed indicator stands: the action taken stays
                status = await report(http, event, "reinstated", await undo(event))
                done = "reinstated" if status < 300 else f"reinstated NOT recorded ({status})"
            else:
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
    parser.add_argument("--stream", help=f"env CRISIS_STREAM_URL; default {DEFAULT_STREAM_URL}")
    parser.add_argument("--api", help=f"env CRISIS_API_URL; default {DEFAULT_API_URL}")
    parser.add_argument("--key", default=os.environ.get("CRISIS_KEY", ""))
    parser.add_argument(
        "--state", type=Path, default=Path(".provider-bot.cursor"), help="where the cursor is kept"
    )
    parser.add_argument("--kind", action="append", help="only these indicator kinds (repeatable)")
    parser.add_argument("--mode", choices=["live", "exercise", "both"], default="live")
    parser.add_argument("--crisis", action="append", help="only these crises (repeatable); default: all")
    parser.add_argument(
        "--no-backfill",
        dest="backfill",
        action="store_false",
        help="without a saved cursor, take only indicators shared from now on",
    )
    args = parser.parse_args()
    if not args.key:
        parser.error("a provider key is needed: --key or CRISIS_KEY")
    cursor = args.state.read_text().strip() or None if args.state.exists() else None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run(
                stream_url(args.stream),
                api_url(args.api),
                args.key,
                cursor=cursor,
                state=args.state,
                kinds=args.kind,
                mode=args.mode,
                backfill=args.backfill,
                crises=args.crisis,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
