"""/v1/crises/{id}/indicators/import: share the indicators of a STIX bundle, a MISP event or a hash list.

The body is the file as it is; its Content-Type names the format (`application/json` is told by content).
The items go through the same share path as a JSON batch: the same rules, the same bound (`max_batch`),
the same per-item verdicts, plus what the file held that is no indicator here (`skipped`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from crisis.api.deps import LedgerDep, MetricsDep, SettingsDep, WriteDep
from crisis.api.problems import Problem
from crisis.api.routes.indicators import Batch, BatchResult, FastJSONResponse, share_batch
from crisis.api.writes import refusals
from crisis.domain import commands
from crisis.domain.book import SHARERS
from crisis.domain.crisis import OrgName
from crisis.domain.enums import IndicatorKind, Tlp
from crisis.interop.formats import Format, detect, read
from crisis.interop.submissions import share_label
from crisis.ledger import Ledger

router = APIRouter(prefix="/v1/crises/{crisis_id}/indicators", tags=["indicators"])

MEDIA_TYPES = {
    "application/stix+json": Format.STIX,
    "application/misp+json": Format.MISP,
    "text/plain": Format.HASHES,
}
_BODY = {"schema": {"type": "string"}}


class ImportResult(BatchResult):
    skipped: list[str]


def _format(content_type: str, text: str) -> Format:
    media = content_type.split(";")[0].strip().lower()
    if media in MEDIA_TYPES:
        return MEDIA_TYPES[media]
    # A JSON document is a STIX bundle or a MISP event; a hash list is text/plain (or text/csv).
    found = detect(text) if media == "application/json" else None
    if found is None or found is Format.HASHES:
        accepted = ", ".join([*MEDIA_TYPES, "application/json (a STIX bundle or MISP event)"])
        raise Problem(415, f"send one of: {accepted}", code="unsupported_media_type")
    return found


def _label(ledger: Ledger, crisis_id: str, found: Tlp | None) -> Tlp | None:
    # An unknown or unreadable crisis gets no label: the share path then answers 404 as for any share.
    record = ledger.book.crises.get(crisis_id)
    return share_label(found, record.state.tlp) if record is not None else None


@router.post(
    "/import",
    response_model=ImportResult,
    openapi_extra={"requestBody": {"content": {m: _BODY for m in [*MEDIA_TYPES, "application/json"]}}},
)
async def import_file(
    crisis_id: str,
    request: Request,
    ledger: LedgerDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    write: WriteDep,
    kind: Annotated[IndicatorKind | None, Query(description="A hash list's kind (sha256, pdq...)")] = None,
    tlp: Annotated[Tlp | None, Query(description="Default: the file's label, else the crisis's.")] = None,
    tlprecipients: Annotated[list[OrgName] | None, Query(max_length=200)] = None,
    confirm_warnings: Annotated[
        bool, Query(description="Share URLs on the warning list (news and research sites) anyway.")
    ] = False,
) -> JSONResponse:
    """Share a file's indicators (STIX 2.1, MISP, hash list, by Content-Type); verdicts per item."""
    with refusals():  # a key that may not share gets that answer, not a verdict on its file
        commands.require(write.actor, SHARERS, "share indicators")
        # A crisis this key may not read is 404 whatever the file holds, an empty file included: the
        # answer never tells a crisis it cannot read from one that does not exist.
        commands.readable_crisis(ledger.book, write.actor, crisis_id)
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(422, f"the body is not UTF-8 (offset {exc.start})", code="malformed") from None
    fmt = _format(request.headers.get("content-type", ""), text)
    try:
        found = read(text, fmt, kind)
    except ValueError as exc:
        raise Problem(422, f"{fmt}: {exc}", code="malformed") from None
    label = tlp or _label(ledger, crisis_id, found.tlp)
    batch = Batch(crisis_id, found.items, label, tlprecipients, confirm_warnings)
    if not batch.items:
        return JSONResponse(
            {"counts": {"created": 0, "sighting": 0, "rejected": 0}, "items": [], "skipped": found.skipped}
        )
    answer = await share_batch(batch, ledger, metrics, settings, write)
    return FastJSONResponse({**answer, "skipped": found.skipped})
