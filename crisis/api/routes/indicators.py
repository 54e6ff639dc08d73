"""/v1/crises/{id}/indicators: share a batch (per-item verdicts), list what the caller may read, retract."""

from __future__ import annotations

from operator import itemgetter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crisis.api.deps import IdempotencyDep, LedgerDep, MetricsDep, PrincipalDep, SettingsDep, require
from crisis.api.problems import Problem
from crisis.api.writes import commit, crisis_for, raise_for, stable_id
from crisis.domain.audience import follow_up_recipients, is_wider
from crisis.domain.book import CrisisRecord, IndicatorRecord, Outcome
from crisis.domain.crisis import OrgName
from crisis.domain.enums import EventType, IndicatorKind, Role, Status, Tlp
from crisis.domain.envelope import Envelope, source_for, utcnow
from crisis.domain.indicators import Indicator, ItemError, check_items
from crisis.domain.principal import Principal
from crisis.domain.report import SightingOut, indicator_visible

router = APIRouter(prefix="/v1/crises/{crisis_id}/indicators", tags=["indicators"])

SHARERS = (Role.COORDINATOR, Role.AUTHORITY, Role.PROVIDER)


class IndicatorBatch(BaseModel):
    """Indicators to share; each item is validated on its own (see IndicatorIn for one item's shape)."""

    model_config = ConfigDict(extra="forbid")

    indicators: list[Any] = Field(
        min_length=1, description="IndicatorIn objects; at most `max_batch` (default 1,000) per request."
    )
    tlp: Tlp | None = Field(default=None, description="Defaults to the crisis's TLP; never wider than it.")
    tlprecipients: list[OrgName] | None = Field(default=None, max_length=200)


class ItemProblem(BaseModel):
    field: str
    message: str


class ItemResult(BaseModel):
    """One item's verdict; `indicator_id` is the one to acknowledge (for a sighting, the existing one)."""

    index: int
    status: Literal["created", "sighting", "rejected"]
    indicator_id: str | None = None
    sighting_of: str | None = None
    event_id: str | None = None
    error: ItemProblem | None = None


class BatchCounts(BaseModel):
    created: int
    sighting: int
    rejected: int


class BatchResult(BaseModel):
    counts: BatchCounts
    items: list[ItemResult]


class IndicatorPublic(Indicator):
    indicator_id: str
    shared_by: str
    shared_at: AwareDatetime
    tlp: Tlp
    tlprecipients: list[str]
    sightings: list[SightingOut]
    retracted: bool


class IndicatorList(BaseModel):
    items: list[IndicatorPublic]
    total: int = Field(description="Readable indicators before offset and limit.")


class RetractRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


class Handling(BaseModel):
    tlp: Tlp
    tlprecipients: tuple[str, ...]


def _handling(record: CrisisRecord, body: IndicatorBatch) -> Handling:
    """The batch's TLP: the crisis's unless stricter; recipients default to the crisis's."""
    crisis = record.state
    tlp = body.tlp or crisis.tlp
    if is_wider(tlp, crisis.tlp):
        message = f"TLP:{tlp.upper()} is wider than the crisis's TLP:{crisis.tlp.upper()}"
        raise Problem(422, message, code="tlp_wider_than_crisis")
    recipients = body.tlprecipients
    if recipients is None:
        recipients = list(crisis.tlprecipients) if tlp.names_recipients else []
    if recipients and not tlp.names_recipients:
        raise Problem(422, f"TLP:{tlp.upper()} names no recipients", code="invalid")
    return Handling(tlp=tlp, tlprecipients=tuple(recipients))


def _envelopes(
    principal: Principal,
    record: CrisisRecord,
    handling: Handling,
    valid: list[tuple[int, dict[str, Any]]],
    idem: str | None,
) -> list[Envelope]:
    crisis = record.state
    source = source_for(principal.org, principal.key_id)
    now = utcnow()
    envelopes = []
    for index, data in valid:
        event_id = stable_id(principal, idem, crisis.id, "indicator", index)
        data["indicator_id"] = event_id  # one id per share: the event's, so a retry names the same one
        data["shared_by"] = principal.org
        envelopes.append(
            Envelope(
                id=event_id,
                source=source,
                type=EventType.INDICATOR_SHARED,
                time=now,
                subject=crisis.id,
                tlp=handling.tlp,
                mode=crisis.mode,
                tlprecipients=handling.tlprecipients,
                data=data,
            )
        )
    return envelopes


def _item(index: int, status: str, event_id: str | None, **fields: Any) -> dict[str, Any]:
    """One ItemResult as a plain dict: a batch answers 1,000 items, and building and re-validating
    models for them cost about a tenth of the ingest budget. The tests check the body against BatchResult.
    """
    return {
        "index": index,
        "status": status,
        "indicator_id": None,
        "sighting_of": None,
        "event_id": event_id,
        "error": None,
        **fields,
    }


def _result(index: int, env: Envelope, outcome: Outcome) -> dict[str, Any]:
    if not outcome.accepted:
        return _item(index, "rejected", env.id, error={"field": "", "message": outcome.message})
    if outcome.sighting_of is not None:
        return _item(
            index, "sighting", env.id, indicator_id=outcome.sighting_of, sighting_of=outcome.sighting_of
        )
    return _item(index, "created", env.id, indicator_id=env.data["indicator_id"])


def _rejected(error: ItemError) -> dict[str, Any]:
    return _item(error.index, "rejected", None, error={"field": error.field, "message": error.message})


@router.post("", response_model=BatchResult)
async def share(
    crisis_id: str,
    body: IndicatorBatch,
    principal: PrincipalDep,
    ledger: LedgerDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    idem: IdempotencyDep,
) -> JSONResponse:
    """Share a batch: one event per valid item, one Kafka round trip; the answer lists every item in order."""
    require(principal, *SHARERS, action="share indicators")
    if len(body.indicators) > settings.max_batch:
        message = f"{len(body.indicators)} indicators; at most {settings.max_batch} per request"
        raise Problem(413, message, code="batch_too_large")
    record = crisis_for(ledger, principal, crisis_id)
    if record.state.status is Status.CLOSED:
        raise Problem(409, f"crisis {crisis_id} is closed and takes no indicators", code="crisis_closed")
    handling = _handling(record, body)
    valid, errors = check_items(body.indicators)
    envelopes = _envelopes(principal, record, handling, valid, idem)
    outcomes = await commit(ledger, metrics, envelopes) if envelopes else []
    results = [_rejected(item) for item in errors]
    results += [_result(i, env, o) for (i, _), env, o in zip(valid, envelopes, outcomes, strict=True)]
    results.sort(key=itemgetter("index"))
    counts = {"created": 0, "sighting": 0, "rejected": 0}
    for r in results:
        counts[r["status"]] += 1
    return JSONResponse({"counts": counts, "items": results})


def _public(r: IndicatorRecord) -> IndicatorPublic:
    return IndicatorPublic(
        **r.data.model_dump(),
        shared_at=r.shared_at,
        tlp=r.tlp,
        tlprecipients=list(r.tlprecipients),
        sightings=[SightingOut(org=s.org, at=s.at) for s in r.sightings],
        retracted=r.retracted,
    )


@router.get("", response_model=IndicatorList)
async def list_indicators(
    crisis_id: str,
    principal: PrincipalDep,
    ledger: LedgerDep,
    kind: Annotated[IndicatorKind | None, Query()] = None,
    retracted: Annotated[bool | None, Query(description="Only retracted (true) or live (false).")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> IndicatorList:
    """Indicators of a crisis that the caller may read (each indicator's own TLP applies), oldest first."""
    require(principal, *SHARERS, action="read indicators")
    record = crisis_for(ledger, principal, crisis_id)
    found = [
        r
        for r in record.indicators.values()
        if indicator_visible(principal, r, record.state)
        and (kind is None or r.data.kind is kind)
        and (retracted is None or r.retracted is retracted)
    ]
    return IndicatorList(items=[_public(r) for r in found[offset : offset + limit]], total=len(found))


@router.post("/{indicator_id}/retract", response_model=IndicatorPublic)
async def retract(
    crisis_id: str,
    indicator_id: str,
    principal: PrincipalDep,
    ledger: LedgerDep,
    metrics: MetricsDep,
    idem: IdempotencyDep,
    body: RetractRequest | None = None,
) -> IndicatorPublic:
    """Withdraw an indicator: by the organisation that shared it, or a coordinator."""
    require(principal, *SHARERS, action="retract indicators")
    record = crisis_for(ledger, principal, crisis_id)
    indicator = record.indicators.get(indicator_id)
    if indicator is None or not indicator_visible(principal, indicator, record.state):
        raise Problem(404, f"no indicator {indicator_id} in crisis {crisis_id}", code="not_found")
    if principal.role is not Role.COORDINATOR and principal.org != indicator.data.shared_by:
        message = "only the organisation that shared an indicator, or a coordinator, may retract it"
        raise Problem(403, message, code="forbidden")
    reason = body.reason if body else ""
    env = Envelope(
        id=stable_id(principal, idem, crisis_id, indicator_id, "retract"),
        source=source_for(principal.org, principal.key_id),
        type=EventType.INDICATOR_RETRACTED,
        subject=crisis_id,
        # The retraction reaches exactly the audience of the indicator it withdraws.
        tlp=indicator.tlp,
        mode=record.state.mode,
        tlprecipients=follow_up_recipients(indicator.tlp, indicator.tlprecipients, indicator.data.shared_by),
        data={"indicator_id": indicator_id, "retracted_by": principal.org, "reason": reason},
    )
    [outcome] = await commit(ledger, metrics, [env])
    raise_for(outcome)
    return _public(record.indicators[indicator_id])
