"""CPU per event of what every indicator costs on the bus: the Kafka codec and the hash chain.

    python bench/codec.py [--number 20000]

Builds an `indicator.shared` as the indicators route makes it (role stamped, linked into its chain) and a
`crisis.opened` (the largest common event), and prints the best of five runs, in µs per event, of
`crisis.bus.codec.encode` / `decode` and `crisis.domain.chain.canonical` / `digest` / `stamp`. Warm, in one
process, without the server's garbage-collector pressure: compare figures from this script with each other.
"""

from __future__ import annotations

import argparse
import time
import timeit
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from crisis.bus.codec import decode, encode
from crisis.domain import chain
from crisis.domain.enums import EventType, Mode, Role, Tlp
from crisis.domain.envelope import Envelope, source_for


def indicator() -> Envelope:
    event_id = str(uuid.uuid4())
    value = uuid.uuid4().hex * 2
    return Envelope(
        id=event_id,
        source=source_for("bka", "k-bka"),
        type=EventType.INDICATOR_SHARED,
        time=datetime.now(UTC),
        subject=str(uuid.uuid4()),
        tlp=Tlp.AMBER,
        mode=Mode.LIVE,
        role=Role.AUTHORITY,
        data={
            "kind": "sha256",
            "value": value,
            "canonical": value,
            "context": {"platform": "vidshare", "labels": ["attack", "livestream"], "first_seen": None},
            "indicator_id": event_id,
            "shared_by": "bka",
        },
    )


def opened() -> Envelope:
    crisis_id = str(uuid.uuid4())
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    crisis: dict[str, Any] = {
        "id": crisis_id,
        "title": "Live-streamed attack — Ünterstadt",
        "summary": "Attack streamed on a video platform; copies spreading.",
        "mode": "live",
        "status": "monitoring",
        "level": None,
        "jurisdictions": ["DE", "FR"],
        "tlp": "red",
        "tlprecipients": ["bka", "vidshare"],
        "created_by": "hub",
        "created_at": at,
        "updated_at": at,
        "version": 1,
    }
    transition = {
        "to": "monitoring",
        "by_org": "hub",
        "by_key": "k-hub",
        "at": at,
        "reason": "",
        "criteria": [],
    }
    return Envelope(
        source=source_for("hub", "k-hub"),
        type=EventType.CRISIS_OPENED,
        subject=crisis_id,
        tlp=Tlp.RED,
        mode=Mode.LIVE,
        tlprecipients=("bka", "vidshare"),
        role=Role.COORDINATOR,
        data={"crisis": crisis, "transition": transition, "expected_version": 0},
    )


def best_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, timer=time.process_time, number=number, repeat=5)) / number * 1e6


def figures(env: Envelope, number: int) -> dict[str, float]:
    stamped = chain.stamp(env, chain.GENESIS)
    record = encode(stamped)
    assert decode(record.value, record.headers) == stamped
    return {
        "encode": best_us(lambda: encode(stamped), number),
        "decode": best_us(lambda: decode(record.value, record.headers), number),
        "canonical": best_us(lambda: chain.canonical(stamped), number),
        "digest": best_us(lambda: chain.digest(stamped), number),
        "stamp": best_us(lambda: chain.stamp(env, chain.GENESIS), number),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--number", type=int, default=20000, help="calls per run (best of five runs of CPU time)"
    )
    args = parser.parse_args()
    for name, env in (("indicator.shared", indicator()), ("crisis.opened", opened())):
        measured = figures(env, args.number)
        print(f"{name:<17} " + "  ".join(f"{op} {us:5.2f} µs" for op, us in measured.items()))


if __name__ == "__main__":
    main()
