"""/v1/transparency: TLP:CLEAR figures across the live crises opened in a period (coordinators only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import AwareDatetime

from crisis.api.deps import LedgerDep, PrincipalDep
from crisis.api.writes import problem
from crisis.audit.transparency import render_html, render_markdown
from crisis.domain import transparency
from crisis.domain.envelope import utcnow

router = APIRouter(prefix="/v1/transparency", tags=["transparency"])


@router.get(
    "",
    response_model=transparency.Transparency,
    responses={200: {"content": {"text/markdown": {}, "text/html": {}}}},
)
async def transparency_report(
    principal: PrincipalDep,
    ledger: LedgerDep,
    start: Annotated[AwareDatetime, Query(alias="from", description="Start of the period (RFC 3339, UTC).")],
    end: Annotated[AwareDatetime, Query(alias="to", description="End of the period, excluded.")],
    format: Annotated[Literal["json", "md", "html"], Query(description="The rendering.")] = "json",
) -> Response | transparency.Transparency:
    """Crises, indicators, provider referrals and removal rates, times, disputes, erasures and reads."""
    if not transparency.may_read_report(principal):
        raise problem("forbidden", f"a {principal.role} key may not read the transparency report")
    if end <= start:
        raise problem(
            "malformed", "`to` must be after `from`", errors=[{"field": "to", "message": "not after from"}]
        )
    report = transparency.build(ledger.book, principal, _utc(start), _utc(end), utcnow())
    if format == "md":
        return PlainTextResponse(render_markdown(report), media_type="text/markdown")
    if format == "html":
        return HTMLResponse(render_html(report))
    return report


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
