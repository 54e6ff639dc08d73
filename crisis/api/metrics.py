"""Prometheus metrics and the access log of the API process."""

from __future__ import annotations

from pathlib import Path

import structlog
from fastapi import Request
from prometheus_client import Counter, Histogram

from crisis.clock.metrics import OverdueGauge
from crisis.ledger import Ledger
from crisis.logging import FailureLog, clip
from crisis.metrics import process_registry
from crisis.webhooks.metrics import WebhookGauges

log = structlog.get_logger("crisis.api.access")

# Anything else counts as "other": a client must not be able to add series by inventing methods.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def route_label(request: Request) -> str:
    # The route template, never the raw path: crisis ids and random paths must not explode the label set.
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


class ApiMetrics:
    def __init__(self, ledger: Ledger, webhooks_file: Path | None = None) -> None:
        self.registry = process_registry(ledger)
        self.registry.register(OverdueGauge(ledger))
        if webhooks_file is not None:
            self.registry.register(WebhookGauges(webhooks_file))
        self.requests = Counter(
            "crisis_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "crisis_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.published = Counter(
            "crisis_events_published_total", "Events Kafka acknowledged.", registry=self.registry
        )
        self.publish_failures = Counter(
            "crisis_publish_failures_total",
            "Writes Kafka refused or did not acknowledge in time.",
            ["kind"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "crisis_http_auth_failures_total",
            "Requests refused for a missing, malformed, unknown, expired or revoked key.",
            registry=self.registry,
        )
        self.failure_log = FailureLog()

    def answered(self, request: Request, status: int, seconds: float) -> None:
        """Count the request and write its one access line (never a header, a query or the key)."""
        method, route = method_label(request.method), route_label(request)
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        org = getattr(request.state, "org", None)
        log.info(
            "http_request",
            method=method,
            route=route,
            status=status,
            duration_ms=round(seconds * 1000, 2),
            **({"org": org} if org else {}),
        )

    def auth_failed(self, request: Request, reason: str) -> None:
        """A refused key: counted always, logged a few times per client address per minute."""
        self.auth_failures.inc()
        address = clip(request.client.host if request.client else "unknown", 64)
        self.failure_log.warn(log, "auth_failed", str(address), reason=reason)
