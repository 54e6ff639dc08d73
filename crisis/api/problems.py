"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from crisis.bus.base import PublishError, PublishUnknown

log = structlog.get_logger(__name__)

PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    503: "Service unavailable",
    500: "Internal server error",
}


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(self, status: int, detail: str, *, code: str = "", **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code
        self.extra = extra


def problem_response(
    status: int, detail: str, *, code: str = "", headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://crisis-bus.org/problems/{code or status}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if code:
        body["code"] = code
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": str(e.get("msg", ""))}
        for e in errors
    ]


# The methods a route can be asked about: Allow names those of them some route on the path serves.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed(app: ASGIApp, scope: Scope) -> list[str]:
    """Every method some route serves on this path: the union over all routes, not the first one's.

    Asked of the router itself (one probe per method), so routers included in routers and routes of any
    class answer alike, and HEAD appears exactly where a route serves it.
    """
    routes = getattr(getattr(app, "router", None), "routes", ())
    return [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]


class BodyLimit:
    """Answers a declared Content-Length over the limit with a 413 problem, before the app reads a byte.

    FastAPI's `max_body_size` counts what is read (chunked bodies too, answered through the handlers below)
    but answers a declared length in plain text from outside the app's handlers: this wraps the app and
    speaks first. The server still drains the unread body, within the transport's body deadline.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = Headers(scope=scope).get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.limit):
                response = problem_response(413, f"the body exceeds {self.limit} bytes", code="too_large")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.status == 429:
            headers = {"Retry-After": str(max(1, math.ceil(float(exc.extra.get("retry_after_s", 1)))))}
        return problem_response(exc.status, exc.detail, code=exc.code, headers=headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            422, "the request does not match its schema", code="invalid", errors=_errors(exc.errors())
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Keep the exception's headers: a 405 must say what is Allowed (RFC 9110).
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed(request.app, request.scope))
        if exc.status_code == 413:  # the body limit, met while reading a body that declared no length
            limit = request.app.state.settings.max_body_bytes
            return problem_response(413, f"the body exceeds {limit} bytes", code="too_large")
        return problem_response(exc.status_code, str(exc.detail), headers=headers or None)

    @app.exception_handler(PublishUnknown)
    async def _unknown(_: Request, exc: PublishUnknown) -> JSONResponse:
        log.warning("publish_unknown", error=str(exc), event_ids=exc.event_ids[:10])
        return problem_response(
            503,
            f"{exc}. The write may have landed: retry with the same event ids, it will not be duplicated.",
            code="outcome_unknown",
            event_ids=list(exc.event_ids),
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(PublishError)
    async def _failed(_: Request, exc: PublishError) -> JSONResponse:
        log.warning("publish_failed", error=str(exc))
        return problem_response(
            503,
            f"the event log is unavailable: {exc}",
            code="broker_unavailable",
            event_ids=list(exc.event_ids),
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error")
        return problem_response(500, "internal error; it has been logged", code="internal")


class ProblemDocument(BaseModel):
    """RFC 9457 problem details, as every error of this API is answered."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str | None = None
    errors: list[dict[str, str]] | None = Field(default=None, description="Per-field errors of a 422.")
    event_ids: list[str] | None = Field(default=None, description="Ids of the events of a 503 write.")


# Every /v1 operation may answer these; documenting them lets clients (and schemathesis) rely on it.
_API_ERRORS = (400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 503)


def document(app: FastAPI) -> None:
    """Declare the problem+json error responses on every /v1 and /taxii2 operation of the OpenAPI document."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = default_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ProblemDocument"] = ProblemDocument.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}}
        metrics = schema.get("paths", {}).get("/metrics", {}).get("get", {})
        if metrics:
            metrics["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith(("/v1", "/taxii2")):
                continue
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status in _API_ERRORS:
                    responses[str(status)] = {"description": TITLES[status], "content": content}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
