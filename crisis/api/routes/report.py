"""/v1/crises/{id}/report: timeline and per-provider times, as JSON or Markdown."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import PlainTextResponse, Response

from crisis.api.deps import LedgerDep, PrincipalDep
from crisis.api.writes import refusals
from crisis.domain import commands
from crisis.domain.book import SHARERS
from crisis.domain.envelope import utcnow
from crisis.domain.report import Report, build_report, render_markdown

router = APIRouter(prefix="/v1/crises/{crisis_id}/report", tags=["report"])

MARKDOWN = "text/markdown"


@router.get(
    "",
    response_model=Report,
    responses={200: {"content": {MARKDOWN: {"schema": {"type": "string"}}}}},
)
async def report(
    crisis_id: str,
    principal: PrincipalDep,
    ledger: LedgerDep,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Report | Response:
    """The report from the log as the caller may see it (TLP applies); Markdown on Accept: text/markdown."""
    with refusals():
        commands.require(principal, SHARERS, "read the report")
        record = commands.readable_crisis(ledger.book, principal, crisis_id)
    built = build_report(record, utcnow(), principal)
    if accept and MARKDOWN in accept.lower():
        return PlainTextResponse(render_markdown(built), media_type=f"{MARKDOWN}; charset=utf-8")
    return built
