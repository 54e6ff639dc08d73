"""/v1/transparency: TLP:CLEAR figures across the live crises opened in a period (coordinators only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import AfterValidator, AwareDatetime

from crisis.api.deps import LedgerDep, PrincipalDep
from crisis.api.writes import problem
from crisis.audit.transparency import render_html, render_markdown
from crisis.domain import transparency
from crisis.domain.envelope import utcnow

router = APIRouter(prefix="/v1/transparency", tags=["transparency"])


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+18:00 is in no UTC year
        raise ValueError("outside the range of UTC times") from None


# A time the report can count in: given with any offset, read in UTC (422 when there is no such UTC time).
Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]


@router.get(
    "",
    response_model=transparency.Transparency,
    responses={200: {"content": {"text/markdown": {}, "text/html": {}}}},
)
async def transparency_report(
    principal: PrincipalDep,
    ledger: LedgerDep,
    start: Annotated[Instant, Query(alias="from", description="Start of the period (RFC 3339, UTC).")],
    end: Annotated[Instant, Query(alias="to", description="End of the period, excluded.")],
    format: Annotated[Literal["json", "md", "html"], Query(description="The rendering.")] = "json",
) -> Response | transparency.Transparency:
    """Crises, indicators, provider referrals and removal rates, times, disputes, erasures and reads."""
    if not transparency.may_read_report(principal):
        raise problem("forbidden", f"a {principal.role} key may not read the transparency report")
    if end <= start:
        raise problem(
            "malformed", "`to` must be after `from`", errors=[{"field": "to", "message": "not after from"}]
        )
    report = transparency.build(ledger.book, principal, start, end, utcnow())
    if format == "md":
        return PlainTextResponse(render_markdown(report), media_type="text/markdown")
    if format == "html":
        return HTMLResponse(render_html(report))
    return report
