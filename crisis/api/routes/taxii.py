"""/taxii2/: a read-only TAXII 2.1 server: discovery, one API root, one collection per readable crisis.

A collection's id is its crisis's id; its objects are the crisis's STIX export as the key may read it, so a
collection the key may not read answers 404 like any crisis it may not read.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime

from crisis.api.deps import LedgerDep, PrincipalDep
from crisis.api.exports import readable_export
from crisis.api.problems import Problem
from crisis.api.routes.exports import stix_text
from crisis.api.writes import refusals
from crisis.domain import commands
from crisis.domain.audience import may_read_crisis
from crisis.domain.book import SHARERS
from crisis.domain.crisis import CrisisState
from crisis.domain.envelope import utcnow
from crisis.domain.principal import Principal
from crisis.interop import taxii
from crisis.ledger import Ledger

router = APIRouter(prefix="/taxii2", tags=["taxii"])

API_ROOT = "api"
MAX_PAGE = 1000
_JSON: dict[int | str, dict[str, Any]] = {
    200: {"content": {taxii.MEDIA_TYPE: {"schema": {"type": "object"}}}}
}


def _answer(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), media_type=taxii.MEDIA_TYPE, headers=headers)


def _collection(state: CrisisState) -> dict[str, Any]:
    return {
        "id": state.id,
        "title": state.title,
        "description": f"{state.mode} crisis, {state.status}: indicators, sightings and provider actions",
        "can_read": True,
        "can_write": False,
        "media_types": [taxii.STIX_MEDIA_TYPE],
    }


@router.get("/", response_class=Response, responses=_JSON)
async def discovery(request: Request, principal: PrincipalDep) -> Response:
    """TAXII discovery: this server's one API root."""
    root = str(request.url_for("api_root"))
    return _answer(
        {
            "title": "crisis-bus",
            "description": "Crises as TAXII 2.1 collections",
            "default": root,
            "api_roots": [root],
        }
    )


@router.get(f"/{API_ROOT}/", response_class=Response, responses=_JSON)
async def api_root(request: Request, principal: PrincipalDep) -> Response:
    """The API root: TAXII 2.1, read-only."""
    limit = request.app.state.settings.max_body_bytes
    return _answer(
        {"title": "crisis-bus crises", "versions": [taxii.MEDIA_TYPE], "max_content_length": limit}
    )


@router.get(f"/{API_ROOT}/collections/", response_class=Response, responses=_JSON)
async def collections(principal: PrincipalDep, ledger: LedgerDep) -> Response:
    """One collection per crisis the key may read."""
    with refusals():
        commands.require(principal, SHARERS, "read indicators")
    states = [r.state for r in ledger.book.crises.values() if may_read_crisis(principal, r.state)]
    return _answer({"collections": [_collection(s) for s in states]})


@router.get(f"/{API_ROOT}/collections/{{collection_id}}/", response_class=Response, responses=_JSON)
async def collection(collection_id: str, principal: PrincipalDep, ledger: LedgerDep) -> Response:
    """One collection: 404 when the key may not read its crisis."""
    with refusals():
        commands.require(principal, SHARERS, "read indicators")
        record = commands.readable_crisis(ledger.book, principal, collection_id)
    return _answer(_collection(record.state))


# A client walks a collection page by page: the dated objects of the last few (collection, state, reader)
# are kept, so a walk builds the bundle once, not once per page (seconds for 10,000 indicators). The key
# holds the number of events the crisis has folded, so any change to the crisis makes a new entry.
_RECENT: OrderedDict[tuple[object, ...], list[taxii.Stored]] = OrderedDict()
_KEEP = 4


async def _stored(ledger: Ledger, principal: Principal, collection_id: str) -> list[taxii.Stored]:
    with refusals():
        export = readable_export(ledger.book, principal, collection_id, utcnow())
    record = ledger.book.crises[collection_id]
    key = (
        id(ledger),
        collection_id,
        len(record.timeline),
        principal.org,
        principal.role,
        principal.exercise_only,
    )
    found = _RECENT.get(key)
    if found is None:
        objects = json.loads(await stix_text(export))["objects"]
        found = _RECENT[key] = taxii.stored(objects, export.crisis.created_at)
        while len(_RECENT) > _KEEP:
            _RECENT.popitem(last=False)
    return found


async def _page(
    ledger: Ledger, principal: Principal, collection_id: str, filters: dict[str, Any]
) -> taxii.Page:
    items = await _stored(ledger, principal, collection_id)
    try:
        return taxii.page(items, **filters)
    except ValueError as exc:
        raise Problem(400, f"next: {exc}", code="invalid_next") from None


AddedAfter = Annotated[AwareDatetime | None, Query(description="Only objects added after this time.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Next = Annotated[str | None, Query(alias="next", max_length=300)]
MatchType = Annotated[str | None, Query(alias="match[type]", max_length=1000)]
MatchId = Annotated[str | None, Query(alias="match[id]", max_length=10_000)]


async def _filters(
    added_after: AddedAfter = None,
    limit: Limit = MAX_PAGE,
    next_token: Next = None,
    match_type: MatchType = None,
    match_id: MatchId = None,
) -> dict[str, Any]:
    """The paging and filter parameters objects and manifest share."""

    def split(text: str | None) -> frozenset[str]:
        return frozenset(t for t in (text or "").split(",") if t)

    return {
        "added_after": added_after,
        "limit": limit,
        "next_token": next_token,
        "types": split(match_type),
        "ids": split(match_id),
    }


FiltersDep = Annotated[dict[str, Any], Depends(_filters)]


@router.get(f"/{API_ROOT}/collections/{{collection_id}}/objects/", response_class=Response, responses=_JSON)
async def objects(
    collection_id: str, principal: PrincipalDep, ledger: LedgerDep, filters: FiltersDep
) -> Response:
    """The collection's STIX objects in an envelope, oldest added first; `more` and `next` page on."""
    found = await _page(ledger, principal, collection_id, filters)
    return _answer(taxii.envelope(found), taxii.date_headers(found))


@router.get(f"/{API_ROOT}/collections/{{collection_id}}/manifest/", response_class=Response, responses=_JSON)
async def manifest(
    collection_id: str, principal: PrincipalDep, ledger: LedgerDep, filters: FiltersDep
) -> Response:
    """What the collection holds: ids, versions and dates added, paged like the objects."""
    found = await _page(ledger, principal, collection_id, filters)
    return _answer(taxii.manifest(found), taxii.date_headers(found))
