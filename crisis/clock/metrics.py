"""`/metrics` for the clock: missed deadlines not withdrawn yet, per crisis and deadline, read at scrape."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from crisis.domain import deadlines
from crisis.domain.enums import Status
from crisis.ledger import Ledger


class OverdueGauge(Collector):
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "crisis_clock_overdue",
            "Deadlines expected providers have missed and not yet answered late, per crisis and deadline "
            "(closed crises are left out).",
            labels=["crisis", "deadline"],
        )
        for crisis_id, record in self.ledger.book.crises.items():
            if record.state.status is Status.CLOSED:
                continue
            for deadline, count in deadlines.open_overdue(record).items():
                gauge.add_metric([crisis_id, str(deadline)], count)
        yield gauge
