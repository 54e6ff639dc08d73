"""/v1/crises/{id}/stix and /misp: the crisis as the reader may read it, in the field's formats."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Response

from crisis.api.deps import LedgerDep, PrincipalDep
from crisis.api.exports import readable_export
from crisis.api.writes import refusals
from crisis.domain.envelope import utcnow
from crisis.interop import misp
from crisis.interop.export import CrisisExport

router = APIRouter(prefix="/v1/crises/{crisis_id}", tags=["exports"])

STIX = "application/stix+json;version=2.1"
_OBJECT = {"schema": {"type": "object"}}


@router.get("/stix", response_class=Response, responses={200: {"content": {STIX: _OBJECT}}})
async def stix_bundle(crisis_id: str, principal: PrincipalDep, ledger: LedgerDep) -> Response:
    """The crisis as a STIX 2.1 bundle: only what the caller may read (each indicator's TLP applies)."""
    with refusals():
        export = readable_export(ledger.book, principal, crisis_id, utcnow())
    return Response(await stix_text(export), media_type=STIX)


@router.get("/misp", response_class=Response, responses={200: {"content": {"application/json": _OBJECT}}})
async def misp_event(crisis_id: str, principal: PrincipalDep, ledger: LedgerDep) -> Response:
    """The crisis as a MISP event (`{"Event": ...}`): only what the caller may read."""
    with refusals():
        export = readable_export(ledger.book, principal, crisis_id, utcnow())
    return Response(await asyncio.to_thread(_misp_text, export), media_type="application/json")


async def stix_text(export: CrisisExport) -> str:
    """The bundle, built off the event loop: seconds for a crisis of 10,000 indicators (bench/exports.py),
    which no other request should wait for. The export is a snapshot of plain values, safe to hand over."""
    return await asyncio.to_thread(_stix_text, export)


def _stix_text(export: CrisisExport) -> str:
    # Imported on the first export, not at start: the stix2 library takes a quarter of a second to load,
    # which every process start paid (bench/state.py restarts: 3.0-3.2 s with it, 2.7-3.0 s without) for a
    # route most processes rarely serve.
    from crisis.interop import stix

    return str(stix.bundle(export).serialize())


def _misp_text(export: CrisisExport) -> str:
    return json.dumps(misp.event(export))
