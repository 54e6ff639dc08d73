"""What an operator watches on a gateway: `/metrics` (Prometheus), `/livez`, `/readyz` on the stream's port.

Counts the fan-out keeps anyway (connections, deliveries) are read at scrape time, so the live path does no
extra work per connection; the publish-to-delivery latency is observed once per event per folded batch.
"""

from __future__ import annotations

import itertools
import json
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Response

from crisis.bus.base import Delivered
from crisis.domain.book import Outcome
from crisis.gateway.fanout import Fanout
from crisis.ledger import Ledger
from crisis.logging import FailureLog, clip
from crisis.metrics import process_registry

if TYPE_CHECKING:
    from crisis.gateway.server import Gateway

log = structlog.get_logger(__name__)

# From a few milliseconds (same host) to the 30 s a resumed client may take to come back.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class GatewayStats(Collector):
    """The gateway's own counts, read when scraped."""

    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self.stats = stats

    def collect(self) -> Iterable[Metric]:
        s = self.stats()
        for name, help_text in (
            ("connections", "Open WebSocket connections."),
            ("subscribers", "Connections receiving events."),
            ("groups", "Distinct audience and filter groups the fan-out serves."),
        ):
            yield GaugeMetricFamily(f"crisis_gateway_{name}", help_text, value=s[name])
        yield CounterMetricFamily(
            "crisis_gateway_delivered", "Events written to subscribers.", value=s["delivered"]
        )
        yield CounterMetricFamily(
            "crisis_gateway_closed_slow",
            "Connections closed for falling behind their buffer.",
            value=s["closed_slow"],
        )


class LatencyHistogram(Collector):
    """A histogram filled a batch at a time on the event loop, in plain ints (read when scraped).

    prometheus_client's Histogram takes locks per observation (1.5-2.6 us per event, bench/latency_metric.py);
    here an event costs a subtraction, a bisect and an increment (0.6-1.0 us).
    """

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name, self.help_text = name, help_text
        self.bounds = list(buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def collect(self) -> Iterable[Metric]:
        cumulative = list(itertools.accumulate(self.counts))
        labels = [repr(float(b)) for b in self.bounds] + ["+Inf"]
        yield HistogramMetricFamily(
            self.name, self.help_text, buckets=list(zip(labels, cumulative, strict=True)), sum_value=self.sum
        )


class GatewayMetrics:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.ledger: Ledger = gateway.ledger
        self.registry = process_registry(self.ledger)
        self.registry.register(GatewayStats(self._stats))
        self.latency = LatencyHistogram(
            "crisis_gateway_delivery_latency_seconds",
            "From an event's time to the gateway writing its frame to live subscribers.",
            LATENCY_BUCKETS,
        )
        self.registry.register(self.latency)
        self.auth_failures = Counter(
            "crisis_gateway_auth_failures_total",
            "Stream requests refused for an unknown, expired or revoked key.",
            registry=self.registry,
        )
        self.failure_log = FailureLog()
        self._fanout: Fanout | None = None

    def _stats(self) -> dict[str, int]:
        if self._fanout is None:  # scraped while starting or stopping
            return dict.fromkeys(("connections", "subscribers", "groups", "delivered", "closed_slow"), 0)
        return self.gateway.stats()

    # ------------------------------------------------------------------ the ledger listener

    def attach(self, fanout: Fanout) -> None:
        """Listen after `fanout`: by then the batch's frames are written."""
        self._fanout = fanout
        self.ledger.listeners.append(self.observe)

    def detach(self) -> None:
        self._fanout = None
        if self.observe in self.ledger.listeners:
            self.ledger.listeners.remove(self.observe)

    def observe(self, batch: Sequence[tuple[Delivered, Outcome]]) -> None:
        """Publish-to-delivery latency, once per event of the batch (not per connection)."""
        fanout = self._fanout
        if fanout is None or not fanout.groups:
            return  # nobody is subscribed: nothing was delivered
        # Aware datetimes subtract faster than .timestamp() converts (both UTC).
        now, bounds, counts = datetime.now(UTC), self.latency.bounds, self.latency.counts
        total = 0.0
        for delivered, outcome in batch:
            if outcome.deliverable:
                seconds = max(0.0, (now - delivered.envelope.time).total_seconds())
                counts[bisect_left(bounds, seconds)] += 1
                total += seconds
        self.latency.sum += total

    # ------------------------------------------------------------------ HTTP on the stream's port

    def answer(self, conn: ServerConnection, path: str) -> Response | None:
        """`/metrics`, `/livez` and `/readyz`; None for any other path."""
        if path == "/metrics":
            return _respond(conn, 200, generate_latest(self.registry).decode(), CONTENT_TYPE_LATEST)
        if path == "/livez":
            return _respond(conn, 200, json.dumps({"status": "ok"}), "application/json")
        if path == "/readyz":
            # Live frames come from this process's fold: ready only while it is current and running.
            caught_up = self.ledger.caught_up.is_set()
            ok = caught_up and self.ledger.failed is None and self._fanout is not None
            body = {"status": "ok" if ok else "unavailable", "caught_up": caught_up}
            return _respond(conn, 200 if ok else 503, json.dumps(body), "application/json")
        return None

    def auth_failed(self, conn: ServerConnection, number: int, reason: str) -> None:
        """A refused key: counted always, logged a few times per client address per minute."""
        self.auth_failures.inc()
        remote = conn.remote_address
        address = str(clip(str(remote[0]) if remote else "unknown", 64))
        self.failure_log.warn(log, "auth_failed", address, conn=number, reason=reason)


def _respond(conn: ServerConnection, status: int, body: str, content_type: str) -> Response:
    response = conn.respond(status, body if body.endswith("\n") else body + "\n")
    del response.headers["Content-Type"]  # Headers appends on assignment: replace, not add
    response.headers["Content-Type"] = content_type
    return response
