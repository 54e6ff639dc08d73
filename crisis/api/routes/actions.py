"""/v1/crises/{id}/actions: a provider's receipt or outcome for one indicator (the one-hour clock), and the
list of those the caller may read."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from crisis.api.deps import LedgerDep, MetricsDep, PrincipalDep, WriteDep
from crisis.api.paging import CursorQuery, LimitQuery, cursors, next_link
from crisis.api.writes import commit, raise_for, refusals, replay
from crisis.domain import commands, pages
from crisis.domain.book import SHARERS
from crisis.domain.enums import ActionOutcome
from crisis.domain.events import ActionReported

router = APIRouter(prefix="/v1/crises/{crisis_id}/actions", tags=["actions"])


class ActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    indicator_id: str = Field(min_length=1, max_length=128)
    outcome: ActionOutcome
    note: str = Field(default="", max_length=1000)


class ActionPublic(ActionReported):
    event_id: str


class ActionList(BaseModel):
    items: list[ActionPublic]
    next: str | None = Field(default=None, description="The URL of the next page; null on the last.")


@router.post("", status_code=201, response_model=ActionPublic)
async def report_action(
    crisis_id: str, body: ActionCreate, ledger: LedgerDep, metrics: MetricsDep, write: WriteDep
) -> ActionPublic:
    """Report `received`, `removed`, `blocked`, `not_found`, `disagree`, `no_action` or `reinstated`."""
    with refusals():
        [env] = replay(ledger, write) or [
            commands.report_action(ledger.book, write, crisis_id, body.indicator_id, body.outcome, body.note)
        ]
    [outcome] = await commit(ledger, metrics, [env])
    raise_for(outcome)
    # A retry answers with the first report (its time, not this attempt's); retries are rare, so a scan.
    actions = ledger.book.crises[crisis_id].actions
    data = next((d for e, d in reversed(actions) if e.id == env.id), None)
    return ActionPublic(**(data or ActionReported.model_validate(env.data)).model_dump(), event_id=env.id)


@router.get("", response_model=ActionList)
async def list_actions(
    request: Request,
    crisis_id: str,
    principal: PrincipalDep,
    ledger: LedgerDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = 1000,
) -> ActionList:
    """Action reports on indicators the caller may read, in the order the log holds them, by page."""
    with refusals():
        commands.require(principal, SHARERS, "read actions")
        record = commands.readable_crisis(ledger.book, principal, crisis_id)
    with cursors():
        page = pages.actions(record, principal, cursor, limit)
    items = [ActionPublic(**data.model_dump(), event_id=env.id) for env, data in page.items]
    return ActionList(items=items, next=next_link(request, page))
