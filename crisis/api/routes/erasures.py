"""/v1/crises/{id}/erasures: a coordinator makes an indicator's value, or a crisis's free text,
unrecoverable now (its key is destroyed), with a reason recorded in the log."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crisis.api.deps import LedgerDep, MetricsDep, WriteDep
from crisis.api.writes import commit, raise_for, refusals, replay
from crisis.domain import commands
from crisis.domain.enums import EventType

router = APIRouter(prefix="/v1/crises/{crisis_id}/erasures", tags=["erasures"])


class ErasureRequest(BaseModel):
    """What to erase: one indicator (`indicator_id`), or the crisis's free text (no `indicator_id`)."""

    model_config = ConfigDict(extra="forbid")

    indicator_id: str | None = Field(default=None, min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000, description="Why: kept in the log in clear.")


class ErasurePublic(BaseModel):
    event_id: str
    type: EventType
    crisis_id: str
    indicator_id: str | None
    erased_by: str
    reason: str
    at: AwareDatetime


@router.post("", status_code=201, response_model=ErasurePublic)
async def erase(
    crisis_id: str, body: ErasureRequest, ledger: LedgerDep, metrics: MetricsDep, write: WriteDep
) -> ErasurePublic:
    """Erase an indicator's value or a crisis's free text now (coordinators); 201 once its key is gone."""
    with refusals():
        [env] = replay(ledger, write) or [
            commands.erase(ledger.book, write, crisis_id, body.indicator_id, body.reason)
        ]
    [outcome] = await commit(ledger, metrics, [env])
    raise_for(outcome)
    return ErasurePublic(
        event_id=env.id,
        type=env.type,
        crisis_id=env.subject,
        indicator_id=env.data.get("indicator_id"),
        erased_by=str(env.data["erased_by"]),
        reason=str(env.data["reason"]),
        at=env.time,
    )
