"""Prometheus metrics of the API process."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "crisis_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "crisis_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.published = Counter(
            "crisis_events_published_total", "Events Kafka acknowledged", registry=self.registry
        )
        self.publish_failures = Counter(
            "crisis_publish_failures_total",
            "Writes Kafka refused or did not acknowledge in time",
            ["kind"],
            registry=self.registry,
        )

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        # The route template, never the raw path: crisis ids must not explode the label set.
        name = getattr(route, "path", "unmatched")
        self.requests.labels(request.method, name, str(response.status_code)).inc()
        self.latency.labels(request.method, name).observe(time.perf_counter() - start)
        return response
