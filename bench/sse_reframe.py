"""What an SSE connection costs beyond a WebSocket one: re-framing the shared frames as SSE events.

    python bench/sse_reframe.py [--events 100] [--runs 2000]

The fan-out writes each batch as WebSocket text frames built once for every client; an SSE connection's
transport turns them into `id:`/`data:` lines (crisis/gateway/sse.py). Prints the CPU per event of that step
for indicator.shared events of the usual size, in batches as the fan-out writes them.
"""

from __future__ import annotations

import argparse
import time

from crisis.domain.enums import EventType, IndicatorKind, Mode, Tlp
from crisis.domain.envelope import Envelope, source_for
from crisis.gateway.frames import event_prefix, text_frame
from crisis.gateway.sse import reframe

CURSOR = b'AaaumPqG1gMBAAA"}'


def event(n: int) -> Envelope:
    value = f"{n:064x}"
    return Envelope(
        source=source_for("bka", "k-bka"),
        type=EventType.INDICATOR_SHARED,
        subject="0ec3eb35-d390-4300-9d26-ef7b1b9414f4",
        tlp=Tlp.AMBER,
        mode=Mode.LIVE,
        data={
            "kind": IndicatorKind.SHA256.value,
            "value": value,
            "canonical": value,
            "indicator_id": f"ind-{n}",
            "shared_by": "bka",
            "context": {"platform": "vidshare", "labels": [f"n{n}"]},
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100, help="events per batch")
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    frames = b"".join(text_frame(event_prefix(event(n)) + CURSOR) for n in range(args.events))
    began = time.process_time()
    for _ in range(args.runs):
        reframe(frames)
    spent = time.process_time() - began
    per_event = spent / (args.runs * args.events) * 1e6
    size = len(frames) // args.events
    print(f"{size} bytes per event, batches of {args.events}: {per_event:.2f} µs CPU per event")


if __name__ == "__main__":
    main()
