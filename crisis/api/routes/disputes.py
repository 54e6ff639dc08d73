"""/v1/crises/{id}/disputes: disputes opened by providers' `disagree`, and their resolution by the
indicator's sharer or the hub."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from crisis.api.deps import LedgerDep, MetricsDep, PrincipalDep, WriteDep
from crisis.api.writes import commit, problem, raise_for, refusals, replay
from crisis.domain import dispute_commands
from crisis.domain.disputes import Dispute, DisputeStatus, Resolution

router = APIRouter(prefix="/v1/crises/{crisis_id}/disputes", tags=["disputes"])


class DisputePublic(BaseModel):
    id: str = Field(description="The event id of the `disagree` action that opened it.")
    indicator_id: str
    shared_by: str
    raised_by: list[str] = Field(description="Providers that disagreed, in order.")
    opened_at: datetime
    status: DisputeStatus
    resolved_by: str = ""
    resolved_at: datetime | None = None
    reason: str = ""

    @classmethod
    def of(cls, d: Dispute) -> DisputePublic:
        return cls(
            id=d.id,
            indicator_id=d.indicator_id,
            shared_by=d.shared_by,
            raised_by=list(d.raised_by),
            opened_at=d.opened_at,
            status=d.status,
            resolved_by=d.resolved_by,
            resolved_at=d.resolved_at,
            reason=d.reason,
        )


class DisputeList(BaseModel):
    items: list[DisputePublic]


class ResolutionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Resolution = Field(
        description="`confirmed`: the indicator stands; `retracted`: it is withdrawn and every recipient is "
        "asked to reinstate the content (providers answer with the action outcome `reinstated`)."
    )
    reason: str = Field(default="", max_length=2000)


@router.get("", response_model=DisputeList)
async def list_disputes(crisis_id: str, principal: PrincipalDep, ledger: LedgerDep) -> DisputeList:
    """Disputes the caller may see: the hub, the indicator's sharer and the providers that disagreed."""
    with refusals():
        found = dispute_commands.listed(ledger.book, principal, crisis_id)
    return DisputeList(items=[DisputePublic.of(d) for d in found])


@router.post("/{dispute_id}/resolution", response_model=DisputePublic)
async def resolve_dispute(
    crisis_id: str,
    dispute_id: str,
    body: ResolutionCreate,
    ledger: LedgerDep,
    metrics: MetricsDep,
    write: WriteDep,
) -> DisputePublic:
    """Confirm or retract a disputed indicator; its sharer or a coordinator only."""
    with refusals():
        [env] = replay(ledger, write) or [
            dispute_commands.resolve(ledger.book, write, crisis_id, dispute_id, body.outcome, body.reason)
        ]
    [outcome] = await commit(ledger, metrics, [env])
    raise_for(outcome)
    dispute = ledger.book.crises[crisis_id].disputes.get(dispute_id)
    if dispute is None:  # pragma: no cover - the fold accepted a resolution of this dispute
        raise problem("not_found", f"no dispute {dispute_id}")
    return DisputePublic.of(dispute)
