"""/v1/crises: open or declare, list, read, and move a crisis through its status machine."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from crisis.api.deps import IdempotencyDep, LedgerDep, MetricsDep, PrincipalDep, require
from crisis.api.problems import Problem
from crisis.api.writes import commit, crisis_for, raise_for, stable_id
from crisis.domain import crisis as rules
from crisis.domain.audience import may_read_crisis
from crisis.domain.crisis import CrisisCreate, CrisisState, TransitionError, TransitionRequest
from crisis.domain.enums import Mode, Role, Status
from crisis.domain.envelope import Envelope, source_for, utcnow
from crisis.domain.events import CrisisChanged
from crisis.domain.principal import Principal

router = APIRouter(prefix="/v1/crises", tags=["crises"])


class CrisisPublic(CrisisState):
    """A crisis as of its latest accepted event, and the id of the event that produced it."""

    event_id: str | None = None


class CrisisList(BaseModel):
    items: list[CrisisState]


def _envelope(principal: Principal, event_id: str, state: CrisisState, data: CrisisChanged) -> Envelope:
    return Envelope(
        id=event_id,
        source=source_for(principal.org, principal.key_id),
        type=rules.event_type_for(data.transition.from_status, data.transition.to_status),
        time=data.transition.at,
        subject=state.id,
        tlp=state.tlp,
        mode=state.mode,
        tlprecipients=state.tlprecipients,
        data=data.model_dump(mode="json"),
    )


@router.post("", status_code=201, response_model=CrisisPublic)
async def open_crisis(
    body: CrisisCreate,
    principal: PrincipalDep,
    ledger: LedgerDep,
    metrics: MetricsDep,
    idem: IdempotencyDep,
    response: Response,
) -> CrisisPublic:
    """Open a crisis in monitoring, or declare it activated; 201 only once Kafka has the event."""
    if not rules.may_open(principal, body.status):
        raise Problem(403, f"a {principal.role} key may not open a crisis as {body.status}", code="forbidden")
    if not principal.may_touch_mode(body.mode):
        raise Problem(403, "an exercise controller's key acts only on exercise crises", code="forbidden")
    crisis_id = stable_id(principal, idem, "crisis")
    state, transition = rules.opened(crisis_id, body, principal, utcnow())
    data = CrisisChanged(crisis=state, transition=transition, expected_version=0)
    env = _envelope(principal, stable_id(principal, idem, "event"), state, data)
    [outcome] = await commit(ledger, metrics, [env])
    raise_for(outcome)
    current = ledger.book.crises[crisis_id].state
    response.headers["Location"] = f"/v1/crises/{crisis_id}"
    return CrisisPublic(**current.model_dump(), event_id=env.id)


@router.get("", response_model=CrisisList)
async def list_crises(
    principal: PrincipalDep,
    ledger: LedgerDep,
    status: Annotated[Status | None, Query()] = None,
    mode: Annotated[Mode | None, Query()] = None,
) -> CrisisList:
    """Crises the caller may read, newest first."""
    items = [
        r.state
        for r in ledger.book.crises.values()
        if may_read_crisis(principal, r.state)
        and (status is None or r.state.status is status)
        and (mode is None or r.state.mode is mode)
    ]
    items.sort(key=lambda s: s.created_at, reverse=True)
    return CrisisList(items=items)


@router.get("/{crisis_id}", response_model=CrisisPublic)
async def get_crisis(crisis_id: str, principal: PrincipalDep, ledger: LedgerDep) -> CrisisPublic:
    """One crisis, as of its latest accepted event."""
    return CrisisPublic(**crisis_for(ledger, principal, crisis_id).state.model_dump())


@router.post("/{crisis_id}/transitions", response_model=CrisisPublic)
async def transition(
    crisis_id: str,
    body: TransitionRequest,
    principal: PrincipalDep,
    ledger: LedgerDep,
    metrics: MetricsDep,
    idem: IdempotencyDep,
) -> CrisisPublic:
    """Activate, change level, conclude or close; a stale expected_version gets 409."""
    require(principal, Role.COORDINATOR, action="change a crisis's status")
    record = crisis_for(ledger, principal, crisis_id)
    if not principal.may_touch_mode(record.state.mode):
        raise Problem(403, "an exercise controller's key acts only on exercise crises", code="forbidden")
    try:
        state, change = rules.plan(record.state, body, principal, utcnow())
    except TransitionError as exc:
        raise Problem(409, exc.message, code=exc.code, current_version=record.state.version) from exc
    data = CrisisChanged(crisis=state, transition=change, expected_version=body.expected_version)
    env = _envelope(principal, stable_id(principal, idem, crisis_id, "transition"), state, data)
    [outcome] = await commit(ledger, metrics, [env])
    raise_for(outcome)
    return CrisisPublic(**ledger.book.crises[crisis_id].state.model_dump(), event_id=env.id)
