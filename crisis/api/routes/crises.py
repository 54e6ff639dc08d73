"""/v1/crises: open or declare, list, read, and move a crisis through its status machine."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from crisis.api.deps import LedgerDep, MetricsDep, PrincipalDep, WriteDep
from crisis.api.paging import CursorQuery, LimitQuery, cursors, next_link
from crisis.api.writes import commit, raise_for, refusals, replay
from crisis.domain import commands, pages
from crisis.domain.crisis import ClockRequest, CrisisCreate, CrisisState, TransitionRequest
from crisis.domain.enums import Mode, Status

router = APIRouter(prefix="/v1/crises", tags=["crises"])


class CrisisPublic(CrisisState):
    """A crisis as of its latest accepted event, and the id of the event that produced it."""

    event_id: str | None = None


class CrisisList(BaseModel):
    items: list[CrisisState]
    next: str | None = Field(default=None, description="The URL of the next page; null on the last.")


@router.post("", status_code=201, response_model=CrisisPublic)
async def open_crisis(
    body: CrisisCreate, ledger: LedgerDep, metrics: MetricsDep, write: WriteDep, response: Response
) -> CrisisPublic:
    """Open a crisis in monitoring, or declare it activated; 201 only once Kafka has the event."""
    with refusals():
        [env] = replay(ledger, write) or [commands.open_crisis(ledger.book, write, body)]
    [outcome] = await commit(ledger, metrics, [env])
    raise_for(outcome)
    response.headers["Location"] = f"/v1/crises/{env.subject}"
    return CrisisPublic(**ledger.book.crises[env.subject].state.model_dump(), event_id=env.id)


@router.get("", response_model=CrisisList)
async def list_crises(
    request: Request,
    principal: PrincipalDep,
    ledger: LedgerDep,
    status: Annotated[Status | None, Query()] = None,
    mode: Annotated[Mode | None, Query()] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = 100,
) -> CrisisList:
    """Crises the caller may read, newest first, a page at a time (follow `next`)."""
    with cursors():
        page = pages.crises(ledger.book, principal, cursor, limit, status, mode)
    return CrisisList(items=page.items, next=next_link(request, page))


@router.get("/{crisis_id}", response_model=CrisisPublic)
async def get_crisis(crisis_id: str, principal: PrincipalDep, ledger: LedgerDep) -> CrisisPublic:
    """One crisis, as of its latest accepted event."""
    with refusals():
        record = commands.readable_crisis(ledger.book, principal, crisis_id)
    return CrisisPublic(**record.state.model_dump())


@router.post("/{crisis_id}/transitions", response_model=CrisisPublic)
async def transition(
    crisis_id: str, body: TransitionRequest, ledger: LedgerDep, metrics: MetricsDep, write: WriteDep
) -> CrisisPublic:
    """Activate, change level, conclude or close; a stale expected_version gets 409."""
    with refusals():
        [env] = replay(ledger, write) or [commands.transition(ledger.book, write, crisis_id, body)]
    [outcome] = await commit(ledger, metrics, [env])
    raise_for(outcome)
    return CrisisPublic(**ledger.book.crises[crisis_id].state.model_dump(), event_id=env.id)


@router.post("/{crisis_id}/clock", response_model=CrisisPublic)
async def set_clock(
    crisis_id: str, body: ClockRequest, ledger: LedgerDep, metrics: MetricsDep, write: WriteDep
) -> CrisisPublic:
    """Change the roster of expected providers or the deadlines (coordinators); recorded in the log."""
    with refusals():
        [env] = replay(ledger, write) or [commands.set_clock(ledger.book, write, crisis_id, body)]
    [outcome] = await commit(ledger, metrics, [env])
    raise_for(outcome)
    return CrisisPublic(**ledger.book.crises[crisis_id].state.model_dump(), event_id=env.id)
