"""/v1/crises/{id}/stix and /misp: the crisis as the reader may read it, in the field's formats."""

from __future__ import annotations

import json

from fastapi import APIRouter, Response

from crisis.api.deps import LedgerDep, PrincipalDep
from crisis.api.exports import readable_export
from crisis.api.writes import refusals
from crisis.domain.envelope import utcnow
from crisis.interop import misp, stix

router = APIRouter(prefix="/v1/crises/{crisis_id}", tags=["exports"])

STIX = "application/stix+json;version=2.1"
_OBJECT = {"schema": {"type": "object"}}


@router.get("/stix", response_class=Response, responses={200: {"content": {STIX: _OBJECT}}})
async def stix_bundle(crisis_id: str, principal: PrincipalDep, ledger: LedgerDep) -> Response:
    """The crisis as a STIX 2.1 bundle: only what the caller may read (each indicator's TLP applies)."""
    with refusals():
        export = readable_export(ledger.book, principal, crisis_id, utcnow())
    return Response(stix.bundle(export).serialize(), media_type=STIX)


@router.get("/misp", response_class=Response, responses={200: {"content": {"application/json": _OBJECT}}})
async def misp_event(crisis_id: str, principal: PrincipalDep, ledger: LedgerDep) -> Response:
    """The crisis as a MISP event (`{"Event": ...}`): only what the caller may read."""
    with refusals():
        export = readable_export(ledger.book, principal, crisis_id, utcnow())
    return Response(json.dumps(misp.event(export)), media_type="application/json")
