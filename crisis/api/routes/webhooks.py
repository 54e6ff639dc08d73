"""/v1/webhooks: an organisation's signed webhook endpoints, their deliveries, dead letters and redelivery."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crisis.api.deps import PrincipalDep, SettingsDep
from crisis.api.problems import Problem
from crisis.domain.enums import EventType, Mode, Role
from crisis.domain.envelope import utcnow
from crisis.domain.principal import Principal
from crisis.domain.webhooks import DeliveryState, Endpoint, may_see_delivery
from crisis.webhooks.signing import new_secret
from crisis.webhooks.store import Delivery, WebhookStore
from crisis.webhooks.targets import url_problem

# Every delivery is listed at /v1/webhook-deliveries: under /v1/webhooks it would share a path with an
# endpoint's id, and a DELETE there would be taken for removing an endpoint named "deliveries".
router = APIRouter(tags=["webhooks"])
HOOKS = "/v1/webhooks"


async def get_store(request: Request, settings: SettingsDep) -> WebhookStore:
    """One store per app, opened on first use (most deployments never register a webhook)."""
    store: WebhookStore | None = getattr(request.app.state, "webhooks", None)
    if store is None:
        store = request.app.state.webhooks = await asyncio.to_thread(WebhookStore, settings.webhooks_file)
    return store


StoreDep = Annotated[WebhookStore, Depends(get_store)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    types: list[EventType] = Field(min_length=1, description="Event types to deliver, e.g. indicator.shared.")
    modes: list[Mode] = Field(default=[Mode.LIVE], min_length=1)
    description: str = Field(default="", max_length=200)


class WebhookPublic(BaseModel):
    id: str
    org: str
    url: str
    types: list[EventType]
    modes: list[Mode]
    description: str
    created_at: AwareDatetime

    @classmethod
    def of(cls, ep: Endpoint) -> WebhookPublic:
        return cls(**ep.model_dump(include=set(cls.model_fields)))


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="The signing secret (`whsec_...`), shown only in this answer.")


class AttemptPublic(BaseModel):
    at: datetime
    status: int | None
    error: str
    duration_ms: float


class DeliveryPublic(BaseModel):
    endpoint_id: str
    event_id: str = Field(description="Also the `webhook-id` header: the same on every attempt.")
    event_type: str
    crisis_id: str
    state: DeliveryState
    attempts_this_round: int
    created_at: datetime
    updated_at: datetime
    attempts: list[AttemptPublic] | None = None

    @classmethod
    def of(cls, d: Delivery, *, attempts: bool = False) -> DeliveryPublic:
        return cls(
            endpoint_id=d.endpoint_id,
            event_id=d.event_id,
            event_type=d.event_type,
            crisis_id=d.crisis_id,
            state=d.state,
            attempts_this_round=d.round_attempts,
            created_at=d.created_at,
            updated_at=d.updated_at,
            attempts=[AttemptPublic(**a.__dict__) for a in d.attempts] if attempts else None,
        )


class DeliveryList(BaseModel):
    items: list[DeliveryPublic]


@router.post(HOOKS, status_code=201, response_model=WebhookCreated)
async def register(
    body: WebhookCreate, principal: PrincipalDep, settings: SettingsDep, store: StoreDep
) -> WebhookCreated:
    """Register an endpoint for this organisation; the answer carries its signing secret, once."""
    problem = url_problem(
        body.url, allow_http=settings.webhook_http_allowed, allow_private=settings.webhook_allow_private
    )
    if problem:
        raise Problem(422, problem, code="invalid_url", errors=[{"field": "url", "message": problem}])
    endpoint = Endpoint(
        id="wh_" + secrets.token_hex(8),
        org=principal.org,
        key_id=principal.key_id,
        role=principal.role,
        exercise_only=principal.exercise_only,
        url=body.url,
        types=tuple(dict.fromkeys(body.types)),
        modes=tuple(dict.fromkeys(body.modes)),
        description=body.description,
        created_at=utcnow(),
    )
    # Each endpoint multiplies the deliveries every event makes: a bounded number per organisation.
    if len(await asyncio.to_thread(store.endpoints, principal.org)) >= settings.webhook_max_per_org:
        message = f"an organisation may register at most {settings.webhook_max_per_org} webhooks"
        raise Problem(409, message, code="too_many_webhooks")
    secret = new_secret()
    endpoint = await asyncio.to_thread(store.add_endpoint, endpoint, secret)
    return WebhookCreated(**WebhookPublic.of(endpoint).model_dump(), secret=secret)


@router.get(HOOKS, response_model=list[WebhookPublic])
async def list_webhooks(principal: PrincipalDep, store: StoreDep) -> list[WebhookPublic]:
    """This organisation's endpoints (never their secrets)."""
    return [WebhookPublic.of(ep) for ep in await asyncio.to_thread(store.endpoints, principal.org)]


@router.get("/v1/webhook-deliveries", response_model=DeliveryList)
async def list_deliveries(
    principal: PrincipalDep,
    store: StoreDep,
    state: DeliveryState | None = None,
    endpoint_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:
    """Deliveries, newest first (`state=dead`: the dead letters); the hub sees every organisation's."""
    hub = principal.role is Role.COORDINATOR
    found = await asyncio.to_thread(
        store.deliveries,
        org=None if hub else principal.org,
        state=state,
        endpoint_id=endpoint_id,
        limit=limit,
    )
    orgs = {ep.id: ep.org for ep in await asyncio.to_thread(store.endpoints)} if hub else {}
    visible = [
        d for d in found if not hub or may_see_delivery(principal, orgs.get(d.endpoint_id, ""), d.handling)
    ]
    return DeliveryList(items=[DeliveryPublic.of(d) for d in visible])


async def _find(store: WebhookStore, endpoint_id: str) -> Endpoint | None:
    return next((ep for ep in await asyncio.to_thread(store.endpoints) if ep.id == endpoint_id), None)


async def _endpoint(store: WebhookStore, principal: Principal, endpoint_id: str) -> Endpoint:
    """One of the caller's organisation's endpoints; another's reads as absent."""
    endpoint = await _find(store, endpoint_id)
    if endpoint is None or endpoint.org != principal.org:
        raise Problem(404, f"no webhook {endpoint_id}", code="not_found")
    return endpoint


async def _delivery(store: WebhookStore, principal: Principal, endpoint_id: str, event_id: str) -> Delivery:
    endpoint = await _find(store, endpoint_id)
    found = await asyncio.to_thread(store.delivery, endpoint_id, event_id) if endpoint else None
    # Not found and not visible read the same: no answer tells an organisation what it may not see.
    if endpoint is None or found is None or not may_see_delivery(principal, endpoint.org, found.handling):
        raise Problem(404, f"no delivery of {event_id} to {endpoint_id}", code="not_found")
    return found


@router.get(HOOKS + "/{endpoint_id}", response_model=WebhookPublic)
async def get_webhook(endpoint_id: str, principal: PrincipalDep, store: StoreDep) -> WebhookPublic:
    """One of this organisation's endpoints."""
    return WebhookPublic.of(await _endpoint(store, principal, endpoint_id))


@router.delete(HOOKS + "/{endpoint_id}", status_code=204)
async def remove_webhook(endpoint_id: str, principal: PrincipalDep, store: StoreDep) -> Response:
    """Remove an endpoint with its deliveries; nothing more is sent to it."""
    await _endpoint(store, principal, endpoint_id)
    await asyncio.to_thread(store.remove_endpoint, endpoint_id)
    return Response(status_code=204)


@router.get(HOOKS + "/{endpoint_id}/deliveries/{event_id}", response_model=DeliveryPublic)
async def get_delivery(
    endpoint_id: str, event_id: str, principal: PrincipalDep, store: StoreDep
) -> DeliveryPublic:
    """One delivery with every attempt (time, HTTP status, error)."""
    return DeliveryPublic.of(await _delivery(store, principal, endpoint_id, event_id), attempts=True)


@router.post(
    HOOKS + "/{endpoint_id}/deliveries/{event_id}/redeliver", status_code=202, response_model=DeliveryPublic
)
async def redeliver(
    endpoint_id: str, event_id: str, principal: PrincipalDep, store: StoreDep
) -> DeliveryPublic:
    """Send a delivery again (a dead letter, say) with a fresh round of attempts and the same webhook-id."""
    await _delivery(store, principal, endpoint_id, event_id)
    await asyncio.to_thread(store.redeliver, endpoint_id, event_id)
    return DeliveryPublic.of(await _delivery(store, principal, endpoint_id, event_id))
