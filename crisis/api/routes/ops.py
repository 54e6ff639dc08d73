"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from crisis.api.deps import get_ledger
from crisis.ledger import Ledger

router = APIRouter(tags=["operations"])


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(ledger: Annotated[Ledger, Depends(get_ledger)]) -> JSONResponse:
    """Ready when the broker answers and the state has caught up with the log."""
    broker = await ledger.bus.healthy()
    caught_up = ledger.caught_up.is_set()
    ok = broker and caught_up and ledger.failed is None
    body = {"status": "ok" if ok else "unavailable", "broker": broker, "caught_up": caught_up}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
