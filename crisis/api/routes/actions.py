"""/v1/crises/{id}/actions: a provider's receipt or outcome for one indicator (the one-hour clock)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from crisis.api.deps import IdempotencyDep, LedgerDep, MetricsDep, PrincipalDep, require
from crisis.api.problems import Problem
from crisis.api.writes import commit, crisis_for, raise_for, stable_id
from crisis.domain.audience import follow_up_recipients
from crisis.domain.enums import ActionOutcome, EventType, Role, Status
from crisis.domain.envelope import Envelope, source_for, utcnow
from crisis.domain.events import ActionReported
from crisis.domain.report import indicator_visible

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
    crisis_id: str,
    body: ActionCreate,
    principal: PrincipalDep,
    ledger: LedgerDep,
    metrics: MetricsDep,
    idem: IdempotencyDep,
) -> ActionPublic:
    """Report `received`, `removed`, `blocked`, `not_found`, `disagree` or `no_action`; providers only."""
    require(principal, Role.PROVIDER, action="report actions")
    record = crisis_for(ledger, principal, crisis_id)
    indicator = record.indicators.get(body.indicator_id)
    if indicator is None or not indicator_visible(principal, indicator, record.state):
        raise Problem(404, f"no indicator {body.indicator_id} in crisis {crisis_id}", code="not_found")
    if record.state.status is Status.CLOSED:
        raise Problem(409, f"crisis {crisis_id} is closed", code="crisis_closed")
    data = ActionReported(
        indicator_id=body.indicator_id,
        outcome=body.outcome,
        provider_org=principal.org,
        at=utcnow(),
        note=body.note,
    )
    env = Envelope(
        id=stable_id(principal, idem, crisis_id, body.indicator_id, body.outcome, "action"),
        source=source_for(principal.org, principal.key_id),
        type=EventType.ACTION_REPORTED,
        time=data.at,
        subject=crisis_id,
        tlp=indicator.tlp,
        mode=record.state.mode,
        tlprecipients=follow_up_recipients(indicator.tlp, indicator.tlprecipients, indicator.data.shared_by),
        data=data.model_dump(mode="json"),
    )
    retry = env.id in ledger.book.outcomes
    [outcome] = await commit(ledger, metrics, [env])
    raise_for(outcome)
    if retry:
        # The first report is the truth (its time, not this attempt's); retries are rare, so a scan is fine.
        data = next((d for e, d in reversed(record.actions) if e.id == env.id), data)
    return ActionPublic(**data.model_dump(), event_id=env.id)
