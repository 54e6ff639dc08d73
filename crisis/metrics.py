"""What every process's /metrics carries: process and runtime collectors, and the ledger's lag."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from crisis.ledger import Ledger


def process_registry(ledger: Ledger) -> CollectorRegistry:
    """A registry of its own (an app, a gateway): several live in one process (`crisis up`, the tests)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(LedgerLag(ledger))
    return registry


class LedgerLag(Collector):
    """How far this process's fold is behind the log, read at scrape time."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterable[Metric]:
        events, seconds = self.ledger.lag()
        yield GaugeMetricFamily(
            "crisis_ledger_lag_events",
            "Events in the log (up to its high-watermarks) that this process has not folded yet.",
            value=events,
        )
        yield GaugeMetricFamily(
            "crisis_ledger_lag_seconds",
            "How long this process's fold has been behind the log (0 when it is current).",
            value=seconds,
        )
        yield GaugeMetricFamily(
            "crisis_ledger_caught_up",
            "1 once this process has folded the log up to where it stood at start-up.",
            value=1 if self.ledger.caught_up.is_set() else 0,
        )
