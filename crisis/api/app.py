"""The HTTP API application: wiring only; routes live in crisis.api.routes."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request, Response

from crisis import heap
from crisis.api import openapi, problems
from crisis.api.metrics import ApiMetrics
from crisis.api.positions import ReadYourWrites
from crisis.api.ratelimit import RateLimiter
from crisis.api.routes import (
    actions,
    audit_reads,
    console,
    crises,
    disputes,
    docs,
    erasures,
    exports,
    imports,
    indicators,
    ops,
    report,
    taxii,
    transparency,
    webhooks,
)
from crisis.audit.reads import ReadAudit, api_read
from crisis.config import Settings
from crisis.keys import KeyStore
from crisis.ledger import Ledger
from crisis.orgs import OrgRegistry

log = structlog.get_logger(__name__)


def create_app(settings: Settings, ledger: Ledger, keys: KeyStore, reads: ReadAudit | None = None) -> FastAPI:
    """The ledger's lifetime (its reader loop) belongs to the caller: the app only reads it."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Also for apps served by other means than `crisis serve` (crisis.heap says why).
        heap.tune()
        yield

    app = FastAPI(
        title="crisis-bus API",
        version="1",
        description="Declare and run online crises, share indicators, report provider actions.",
        lifespan=lifespan,
        docs_url=None,  # served by crisis.api.routes.docs from local files
        # Also counts chunked bodies that carry no content-length (the middleware below checks the header).
        max_body_size=settings.max_body_bytes,
        generate_unique_id_function=openapi.operation_id,
    )
    app.state.settings = settings
    app.state.ledger = ledger
    app.state.keys = keys
    app.state.orgs = OrgRegistry(settings.orgs_file)
    app.state.limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    app.state.metrics = metrics = ApiMetrics(ledger, settings.webhooks_file)
    app.state.reads = audit = reads if reads is not None else ReadAudit()
    problems.install(app)
    problems.document(app)
    openapi.document(app)
    app.include_router(crises.router)
    app.include_router(indicators.router)
    app.include_router(imports.router)
    app.include_router(actions.router)
    app.include_router(disputes.router)
    app.include_router(transparency.router)
    app.include_router(erasures.router)
    app.include_router(report.router)
    app.include_router(exports.router)
    app.include_router(taxii.router)
    app.include_router(ops.router)
    app.include_router(console.router)
    app.include_router(docs.router)
    app.include_router(webhooks.router)
    app.include_router(audit_reads.router)

    app.add_middleware(ReadYourWrites, timeout_s=settings.read_after_timeout_s)

    @app.middleware("http")
    async def context(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        structlog.contextvars.clear_contextvars()
        request_id = request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        length = request.headers.get("content-length")
        status = 500  # what the client gets if the app raises (the error handler answers outside)
        try:
            if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
                response: Response = problems.problem_response(
                    413, f"the body exceeds {settings.max_body_bytes} bytes", code="too_large"
                )
            else:
                response = await call_next(request)
            status = response.status_code
            if request.method == "GET" and status < 300:
                _count_read(audit, request)
        finally:
            metrics.answered(request, status, time.perf_counter() - start)
        response.headers["X-Request-Id"] = request_id
        return response

    return app


def _count_read(reads: ReadAudit, request: Request) -> None:
    """A successful read of indicators, an export or a report, counted for the read audit."""
    kind = api_read(getattr(request.scope.get("route"), "path", ""))
    key_id = getattr(request.state, "key_id", None)
    if kind is not None and key_id is not None:
        params = request.scope.get("path_params", {})
        crisis_id = str(params.get("crisis_id") or params.get("collection_id") or "")
        reads.count(request.state.org, key_id, crisis_id, kind)
