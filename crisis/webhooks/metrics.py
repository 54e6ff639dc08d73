"""`/metrics` for webhooks: deliveries by state and attempts by outcome, read from the store at scrape.

Read from the shared SQLite file rather than counted in the deliverer, so every API process reports the
same figures whichever process delivers (one per deployment). Removing an endpoint removes its records,
so these are gauges of what the store holds, not counters.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from crisis.domain.webhooks import DeliveryState

OUTCOMES = ("delivered", "http_error", "network_error")
# An attempt is a success when it recorded no error; a failure with a status got an answer other than 2xx,
# one without a status got none (refused, timed out, or a target refused before sending).
_ATTEMPTS = (
    "SELECT CASE WHEN error = '' THEN 'delivered' WHEN status IS NOT NULL THEN 'http_error' "
    "ELSE 'network_error' END, count(*) FROM attempts GROUP BY 1"
)


@dataclass(frozen=True)
class Counts:
    deliveries: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)


def read_counts(path: Path) -> Counts:
    """What the store holds; empty when there is no store yet (nothing registered) or it cannot be read."""
    if not path.exists():
        return Counts()
    try:
        # Read-only: a scrape never creates the file nor waits long on the deliverer's writes.
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            states = db.execute("SELECT state, count(*) FROM deliveries GROUP BY state").fetchall()
            attempts = db.execute(_ATTEMPTS).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return Counts()
    return Counts({str(s): int(n) for s, n in states}, {str(o): int(n) for o, n in attempts})


class WebhookGauges(Collector):
    def __init__(self, path: Path) -> None:
        self.path = path

    def collect(self) -> Iterable[Metric]:
        counts = read_counts(self.path)
        deliveries = GaugeMetricFamily(
            "crisis_webhook_deliveries",
            "Webhook deliveries in the store by state: pending (being tried or waiting for a retry), "
            "delivered, dead (dead letters, sent again only on a redelivery).",
            labels=["state"],
        )
        for state in DeliveryState:
            deliveries.add_metric([state.value], counts.deliveries.get(state.value, 0))
        attempts = GaugeMetricFamily(
            "crisis_webhook_attempts",
            "Webhook delivery attempts in the store by outcome: delivered (a 2xx answer), http_error "
            "(another status), network_error (no answer).",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            attempts.add_metric([outcome], counts.attempts.get(outcome, 0))
        yield deliveries
        yield attempts
