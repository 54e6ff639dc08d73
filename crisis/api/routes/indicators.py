"""/v1/crises/{id}/indicators: share a batch (per-item verdicts), list what the caller may read, retract.

Files in the field's formats (STIX, MISP, hash lists) come in through crisis.api.routes.imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crisis.api.deps import LedgerDep, MetricsDep, PrincipalDep, SettingsDep, WriteDep
from crisis.api.metrics import ApiMetrics
from crisis.api.paging import CursorQuery, LimitQuery, cursors, next_link
from crisis.api.writes import commit, problem, raise_for, refusals, replay
from crisis.config import Settings
from crisis.domain import commands, pages, warning_list
from crisis.domain.book import SHARERS, IndicatorRecord, Outcome
from crisis.domain.commands import Write
from crisis.domain.crisis import OrgName
from crisis.domain.enums import IndicatorKind, Tlp
from crisis.domain.envelope import Envelope
from crisis.domain.indicators import Indicator, ItemError, check_items
from crisis.domain.pages import MAX_LIMIT
from crisis.domain.report import SightingOut
from crisis.ledger import Ledger

router = APIRouter(prefix="/v1/crises/{crisis_id}/indicators", tags=["indicators"])


class IndicatorBatch(BaseModel):
    """Indicators to share; each item is validated on its own (see IndicatorIn for one item's shape)."""

    model_config = ConfigDict(extra="forbid")

    indicators: list[Any] = Field(
        min_length=1, description="IndicatorIn objects; at most `max_batch` (default 1,000) per request."
    )
    tlp: Tlp | None = Field(default=None, description="Defaults to the crisis's TLP; never wider than it.")
    tlprecipients: list[OrgName] | None = Field(
        default=None,
        max_length=200,
        description="For RED and AMBER+STRICT: registered organisations within the crisis's audience "
        "(default: the crisis's recipients); the crisis's declarer is always added.",
    )
    confirm_warnings: bool = Field(
        default=False,
        description="Share URLs on the warning list (news and research sites) anyway; without it, such a "
        "batch is refused (422 `warning_listed`, one error per flagged item) and nothing is shared.",
    )


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
    warning: str | None = Field(
        default=None, description="Present on a URL on the warning list, shared with `confirm_warnings`."
    )


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
    erased: bool = Field(
        default=False,
        description="Erased (by a coordinator, or when retention ended): value, canonical form, blob and "
        "context are gone for good; kind, times, sightings and actions remain.",
    )


class IndicatorList(BaseModel):
    items: list[IndicatorPublic]
    next: str | None = Field(default=None, description="The URL of the next page; null on the last.")
    total: int | None = Field(
        default=None, description="Readable indicators matching the filters: on the first page only."
    )


class RetractRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


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
    return _item(index, "created", env.id, indicator_id=env.id)


def _rejected(error: ItemError) -> dict[str, Any]:
    return _item(error.index, "rejected", None, error={"field": error.field, "message": error.message})


@router.post("", response_model=BatchResult)
async def share(
    crisis_id: str,
    body: IndicatorBatch,
    ledger: LedgerDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    write: WriteDep,
) -> JSONResponse:
    """Share a batch: one event per valid item, one Kafka round trip; the answer lists every item in order."""
    batch = Batch(crisis_id, body.indicators, body.tlp, body.tlprecipients, body.confirm_warnings)
    return FastJSONResponse(await share_batch(batch, ledger, metrics, settings, write))


class FastJSONResponse(JSONResponse):
    """A JSON answer written by orjson (a batch answers 1,000 items); by the json module when orjson
    refuses a value (an int beyond 64 bits, a key that is not a string)."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return super().render(content)


@dataclass(frozen=True, slots=True)
class Batch:
    crisis_id: str
    items: list[Any]
    tlp: Tlp | None
    recipients: list[str] | None
    confirm_warnings: bool = False


async def share_batch(
    batch: Batch, ledger: Ledger, metrics: ApiMetrics, settings: Settings, write: Write
) -> dict[str, Any]:
    """The share path every way in takes (JSON batches and imported files): bounded, per-item verdicts."""
    if len(batch.items) > settings.max_batch:
        message = f"{len(batch.items)} indicators; at most {settings.max_batch} per request"
        raise problem("batch_too_large", message)
    valid, errors = check_items(batch.items)
    flagged = warning_list.flagged(valid, settings.warning_domains)
    if flagged and not batch.confirm_warnings:
        raise problem(
            "warning_listed",
            "URLs on the warning list (news and research sites): check them, then send the batch again "
            "with confirm_warnings: true to share them anyway",
            errors=[{"field": f"indicators.{i}.value", "message": m} for i, m in sorted(flagged.items())],
        )
    with refusals():
        envelopes = replay(ledger, write) or commands.share(
            ledger.book, write, batch.crisis_id, valid, batch.tlp, batch.recipients
        )
    # Without an Idempotency-Key the ids are random and new (crisis.api.idempotency.stable_id).
    new_ids = write.idempotency is None
    outcomes = await commit(ledger, metrics, envelopes, new_ids=new_ids) if envelopes else []
    results = [_rejected(item) for item in errors]
    results += [_result(i, env, o) for (i, _), env, o in zip(valid, envelopes, outcomes, strict=True)]
    for r in results:
        if r["index"] in flagged and r["status"] != "rejected":
            r["warning"] = flagged[r["index"]]
    results.sort(key=itemgetter("index"))
    counts = {"created": 0, "sighting": 0, "rejected": 0}
    for r in results:
        counts[r["status"]] += 1
    return {"counts": counts, "items": results}


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
    request: Request,
    crisis_id: str,
    principal: PrincipalDep,
    ledger: LedgerDep,
    kind: Annotated[IndicatorKind | None, Query()] = None,
    retracted: Annotated[bool | None, Query(description="Only retracted (true) or live (false).")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = 1000,
    offset: Annotated[int, Query(ge=0, deprecated=True, description="Use `cursor`.")] = 0,
) -> IndicatorList:
    """Indicators of a crisis the caller may read (each one's own TLP applies), oldest first, by page."""
    with refusals():
        commands.require(principal, SHARERS, "read indicators")
        record = commands.readable_crisis(ledger.book, principal, crisis_id)

    def wanted(r: IndicatorRecord) -> bool:
        return (kind is None or r.data.kind is kind) and (retracted is None or r.retracted is retracted)

    total = None
    if cursor is None:
        # Counted only where a client starts reading: a count on every page would cost a whole scan each.
        total = sum(
            1 for _ in pages.walk(lambda c: pages.indicators(record, principal, c, MAX_LIMIT, wanted))
        )
        if offset:
            cursor = pages.indicators(record, principal, None, offset, wanted).next
            if cursor is None:
                return IndicatorList(items=[], total=total)
    with cursors():
        page = pages.indicators(record, principal, cursor, limit, wanted)
    return IndicatorList(items=[_public(r) for r in page.items], next=next_link(request, page), total=total)


@router.post("/{indicator_id}/retract", response_model=IndicatorPublic)
async def retract(
    crisis_id: str,
    indicator_id: str,
    ledger: LedgerDep,
    metrics: MetricsDep,
    write: WriteDep,
    body: RetractRequest | None = None,
) -> IndicatorPublic:
    """Withdraw an indicator: by the organisation that shared it, or a coordinator."""
    with refusals():
        reason = body.reason if body else ""
        [env] = replay(ledger, write) or [
            commands.retract(ledger.book, write, crisis_id, indicator_id, reason)
        ]
    [outcome] = await commit(ledger, metrics, [env])
    raise_for(outcome)
    return _public(ledger.book.crises[crisis_id].indicators[indicator_id])
