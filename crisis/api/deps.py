"""Dependencies, declared once as Annotated aliases; tests swap them with dependency_overrides.

All are `async def`: none blocks (the keys and orgs files are re-read at most once a second), and FastAPI
runs a plain `def` dependency in its thread pool, a thread hop per dependency per request.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

import structlog
from fastapi import Depends, Header, Request

from crisis.api.idempotency import request_fingerprint, stable_id
from crisis.api.metrics import ApiMetrics
from crisis.api.problems import Problem
from crisis.api.ratelimit import RateLimiter
from crisis.config import Settings
from crisis.domain.commands import Write
from crisis.domain.enums import Mode, Role
from crisis.domain.envelope import utcnow
from crisis.domain.principal import Principal
from crisis.keys import KeyStore
from crisis.ledger import Ledger
from crisis.orgs import OrgRegistry


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


async def get_keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


async def get_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


async def get_principal(
    request: Request,
    keys: Annotated[KeyStore, Depends(get_keys)],
    limiter: Annotated[RateLimiter, Depends(get_limiter)],
    metrics: Annotated[ApiMetrics, Depends(get_metrics)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """The caller, from `Authorization: Bearer <key>`; 401 for a missing, unknown, expired or revoked key."""
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
    request.state.key_id = principal.key_id  # for the read audit, likewise
    wait = limiter.take(principal.key_id)
    if wait > 0:
        raise Problem(
            429,
            f"too many requests for this key; retry in {wait:.2f} s",
            code="rate_limited",
            retry_after_s=round(wait, 3),
        )
    return principal


async def ready_ledger(ledger: Annotated[Ledger, Depends(get_ledger)]) -> Ledger:
    """Reads and writes wait until the state has caught up with the log: no answer from a stale view."""
    if not ledger.caught_up.is_set():
        raise Problem(503, "the service is still reading the event log; retry shortly", code="not_ready")
    return ledger


async def idempotency_key(
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


async def get_orgs(request: Request) -> OrgRegistry:
    orgs: OrgRegistry = request.app.state.orgs
    return orgs


def provider_orgs(keys: KeyStore, orgs: OrgRegistry, mode: Mode) -> list[str]:
    """Organisations holding a valid provider key for `mode` (registered ones, once a registry exists):
    the roster a crisis starts with, within its audience. Read only when a crisis is declared without one."""
    now = utcnow()
    found = {
        r.org
        for r in keys.list()
        if r.role is Role.PROVIDER and r.valid_at(now) and r.principal().may_touch_mode(mode)
    }
    return sorted(org for org in found if orgs.known(org))


async def get_write(
    request: Request,
    principal: Annotated[Principal, Depends(get_principal)],
    orgs: Annotated[OrgRegistry, Depends(get_orgs)],
    keys: Annotated[KeyStore, Depends(get_keys)],
    key: Annotated[str | None, Depends(idempotency_key)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> Write:
    """The writer of this request: its key, the time, retry-stable event ids and the request's fingerprint.

    The fingerprint (method, path and canonical JSON body) travels on every event of the write, so any
    API process, after any restart, recognises the same Idempotency-Key sent with a different request.
    """
    fingerprint = None
    if key is not None:
        fingerprint = request_fingerprint(
            principal, key, request.method, request.url.path, await request.body()
        )
    return Write(
        actor=principal,
        at=utcnow(),
        ids=partial(stable_id, principal, key),
        idempotency=fingerprint,
        registered=orgs.known,
        providers=partial(provider_orgs, keys, orgs),
        retention_s=settings.retention_after_close_s,
    )


SettingsDep = Annotated[Settings, Depends(get_settings)]
LedgerDep = Annotated[Ledger, Depends(ready_ledger)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
IdempotencyDep = Annotated[str | None, Depends(idempotency_key)]
WriteDep = Annotated[Write, Depends(get_write)]


async def get_metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
