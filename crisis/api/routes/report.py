"""/v1/crises/{id}/report: timeline and per-provider times, as JSON or Markdown; a summary and NDJSON lines
for a crisis too large to take in one answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import Field

from crisis.api.deps import LedgerDep, PrincipalDep
from crisis.api.writes import refusals
from crisis.domain import commands
from crisis.domain.book import SHARERS, CrisisRecord
from crisis.domain.envelope import utcnow
from crisis.domain.principal import Principal
from crisis.domain.report import Report, build_report, lines_of, render_markdown, report_summary

router = APIRouter(prefix="/v1/crises/{crisis_id}/report", tags=["report"])

MARKDOWN = "text/markdown"
NDJSON = "application/x-ndjson"
# Lines per chunk of the stream: the event loop (and the fold) runs between chunks.
CHUNK_LINES = 500


class ReportSummary(Report):
    """The report without its per-indicator parts (`indicators` and provider `items` are empty, the
    timeline holds the crisis's own events); `lines` streams the rest."""

    indicators_total: int = Field(description="Indicators the caller may read in this crisis.")
    lines: str = Field(description="The URL of the NDJSON stream of indicators, provider items and timeline.")


def _record(principal: Principal, ledger: LedgerDep, crisis_id: str) -> CrisisRecord:
    with refusals():
        commands.require(principal, SHARERS, "read the report")
        return commands.readable_crisis(ledger.book, principal, crisis_id)


@router.get(
    "",
    response_model=Report | ReportSummary,
    responses={200: {"content": {MARKDOWN: {"schema": {"type": "string"}}}}},
)
async def report(
    request: Request,
    crisis_id: str,
    principal: PrincipalDep,
    ledger: LedgerDep,
    view: Annotated[
        Literal["full", "summary"], Query(description="`summary`: O(providers) in size.")
    ] = "full",
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Report | Response:
    """The report from the log as the caller may see it (TLP applies); Markdown on Accept: text/markdown."""
    record = _record(principal, ledger, crisis_id)
    if view == "summary":
        summary, total = report_summary(record, utcnow(), principal)
        lines = f"{request.url.path}/lines"
        return ReportSummary(**summary.model_dump(), indicators_total=total, lines=lines)
    built = build_report(record, utcnow(), principal)
    if accept and MARKDOWN in accept.lower():
        return PlainTextResponse(render_markdown(built), media_type=f"{MARKDOWN}; charset=utf-8")
    return built


@router.get("/lines", response_class=StreamingResponse, responses={200: {"content": {NDJSON: {}}}})
async def report_stream(crisis_id: str, principal: PrincipalDep, ledger: LedgerDep) -> StreamingResponse:
    """The report's indicators, provider items and timeline as NDJSON, one object a line, each with `part`."""
    # Read from the crisis's storage as the chunks go out: no whole report is built in memory.
    streamed = lines_of(_record(principal, ledger, crisis_id), principal)

    async def chunks() -> AsyncIterator[bytes]:
        lines: list[str] = []
        for line in streamed:
            lines.append(json.dumps(line, separators=(",", ":")))
            if len(lines) >= CHUNK_LINES:
                yield ("\n".join(lines) + "\n").encode()
                lines = []
        if lines:
            yield ("\n".join(lines) + "\n").encode()

    return StreamingResponse(chunks(), media_type=NDJSON)
