"""/v1/crises/{id}/actions: a provider's receipt or outcome for one indicator (the one-hour clock)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from crisis.api.deps import LedgerDep, MetricsDep, WriteDep
from crisis.api.writes import commit, raise_for, refusals, replay
from crisis.domain import commands
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


@router.post("", status_code=201, response_model=ActionPublic)
async def report_action(
    crisis_id: str, body: ActionCreate, ledger: LedgerDep, metrics: MetricsDep, write: WriteDep
) -> ActionPublic:
    """Report `received`, `removed`, `blocked`, `not_found`, `disagree` or `no_action`; providers only."""
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
