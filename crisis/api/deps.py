"""Dependencies, declared once as Annotated aliases; tests swap them with dependency_overrides."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Header, Request

from crisis.api.metrics import ApiMetrics
from crisis.api.problems import Problem
from crisis.api.ratelimit import RateLimiter
from crisis.config import Settings
from crisis.domain.enums import Role
from crisis.domain.principal import Principal
from crisis.keys import KeyStore
from crisis.ledger import Ledger


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def get_keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


def get_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


def get_principal(
    request: Request,
    keys: Annotated[KeyStore, Depends(get_keys)],
    limiter: Annotated[RateLimiter, Depends(get_limiter)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """The caller, from `Authorization: Bearer <key>`; 401 for a missing, unknown, expired or revoked key."""
    metrics = get_metrics(request)
    if not authorization:
        metrics.auth_failed(request, "missing")
        raise Problem(401, "send an API key as 'Authorization: Bearer <key>'", code="unauthenticated")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        metrics.auth_failed(request, "malformed")
        raise Problem(401, "the Authorization header must be 'Bearer <key>'", code="unauthenticated")
    principal = keys.authenticate(token.strip())
    if principal is None:
        metrics.auth_failed(request, "unknown_key")
        raise Problem(401, "the API key is unknown, expired or revoked", code="unauthenticated")
    structlog.contextvars.bind_contextvars(org=principal.org, key_id=principal.key_id)
    request.state.org = principal.org  # for the access line, written outside this dependency's context
    wait = limiter.take(principal.key_id)
    if wait > 0:
        raise Problem(
            429,
            f"too many requests for this key; retry in {wait:.2f} s",
            code="rate_limited",
            retry_after_s=round(wait, 3),
        )
    return principal


def ready_ledger(ledger: Annotated[Ledger, Depends(get_ledger)]) -> Ledger:
    """Reads and writes wait until the state has caught up with the log: no answer from a stale view."""
    if not ledger.caught_up.is_set():
        raise Problem(503, "the service is still reading the event log; retry shortly", code="not_ready")
    return ledger


def idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=128,
            pattern=r"^[A-Za-z0-9._:-]+$",
            description="Retrying a write with the same key never creates a second event.",
        ),
    ] = None,
) -> str | None:
    return idempotency_key


SettingsDep = Annotated[Settings, Depends(get_settings)]
LedgerDep = Annotated[Ledger, Depends(ready_ledger)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
IdempotencyDep = Annotated[str | None, Depends(idempotency_key)]


def require(principal: Principal, *roles: Role, action: str) -> None:
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Problem(403, f"a {principal.role} key may not {action} (needs {allowed})", code="forbidden")


def get_metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
