"""CPU per event of the gateway's publish-to-delivery histogram, beside prometheus_client's Histogram.

    python bench/latency_metric.py [--batch 500] [--rounds 2000] [--repeats 5]

The gateway observes once per event of each folded batch (never per connection). Both ways are timed on the
same batch, interleaved; medians are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry, Histogram

from crisis.bus.base import Delivered
from crisis.bus.memory import MemoryBus
from crisis.domain.book import Outcome
from crisis.gateway.metrics import LATENCY_BUCKETS, GatewayMetrics
from crisis.ledger import Ledger
from tests.gateway.events import crisis_opened, indicator_shared


def ns_per_event(observe: Any, batch: list[tuple[Delivered, Outcome]], rounds: int) -> float:
    start = time.process_time()
    for _ in range(rounds):
        observe(batch)
    return (time.process_time() - start) / (rounds * len(batch)) * 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    metrics = GatewayMetrics(SimpleNamespace(ledger=Ledger(MemoryBus())))  # type: ignore[arg-type]
    metrics._fanout = SimpleNamespace(groups=1)  # type: ignore[assignment]  # one group subscribed
    crisis = crisis_opened()
    batch = [(Delivered(indicator_shared(crisis), 0, n), Outcome(True)) for n in range(args.batch)]
    histogram = Histogram("h_seconds", "h", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())

    def plain(items: list[tuple[Delivered, Outcome]]) -> None:
        now = datetime.now(UTC)
        for delivered, outcome in items:
            if outcome.deliverable:
                histogram.observe(max(0.0, (now - delivered.envelope.time).total_seconds()))

    ours, theirs = [], []
    for _ in range(args.repeats):
        ours.append(ns_per_event(metrics.observe, batch, args.rounds))
        theirs.append(ns_per_event(plain, batch, args.rounds))
    print(f"batch {args.batch}, {args.rounds} rounds x {args.repeats}, CPU per event (median)")
    print(f"  gateway histogram (plain ints)        {statistics.median(ours):6.0f} ns")
    print(f"  prometheus_client Histogram.observe   {statistics.median(theirs):6.0f} ns")


if __name__ == "__main__":
    main()
