"""The TAXII 2.1 server, read by the OASIS client (taxii2-client, over real sockets in a thread): one
collection per crisis the key may read, objects paged with `limit`/`next` and filtered by `added_after`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from tests.api.conftest import Actors
from tests.api.test_exports import HIDDEN_MD5, assert_nothing_of, crisis_with_everything
from tests.api.test_exports import settings as exports_settings

pytestmark = pytest.mark.kafka
settings = exports_settings  # the same registered organisations

TAXII = "application/taxii+json;version=2.1"


class Bearer(requests.auth.AuthBase):
    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.key}"
        return request


def walk(url: str, key: str, per_page: int, **filters: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Collections the key lists, and every object of the first, page by page, as the OASIS client does."""
    server = Server(url, auth=Bearer(key))
    [root] = server.api_roots
    assert isinstance(root, ApiRoot) and TAXII in root.versions
    collections = root.collections
    objects = [
        o
        for page in as_pages(collections[0].get_objects, per_page, **filters)
        for o in page.get("objects", [])
    ]
    return [c.id for c in collections], objects


async def test_the_oasis_client_lists_the_collection_and_pages_its_objects(actors: Actors) -> None:
    cid, hidden = await crisis_with_everything(actors)
    # A crisis vidshare may not read: no collection for it, and its id answers like any unknown one.
    secret = await actors.crisis(tlp="red", tlprecipients=["tubeco"])
    key = actors.key("provider")
    url = f"{actors.stack.api_url}/taxii2/"

    # The sharer of the RED indicator walks first: what it may read is never served to another reader.
    _, sharers = await asyncio.to_thread(walk, url, actors.key("authority"), 10)
    assert f"indicator--{hidden}" in {o["id"] for o in sharers}
    listed, objects = await asyncio.to_thread(walk, url, key, 10)
    assert listed == [cid]
    bundle = (await actors.call("GET", f"/v1/crises/{cid}/stix", "provider")).json()["objects"]
    assert sorted(o["id"] for o in objects) == sorted(o["id"] for o in bundle)
    assert len(objects) > 40  # several pages of 10
    assert_nothing_of(str(objects), hidden)

    since = datetime.now(UTC)
    new = await actors.shared_id(cid, {"kind": "md5", "value": "4" * 32})
    _, recent = await asyncio.to_thread(walk, url, key, 10, added_after=since)
    assert sorted(o["id"] for o in recent) == sorted([f"indicator--{new}", bundle_report(bundle)])

    def unreadable() -> int:
        collection = Collection(f"{url}api/collections/{secret['id']}/", auth=Bearer(key))
        try:
            collection.get_objects()
        except requests.HTTPError as exc:
            return exc.response.status_code
        return 200

    assert await asyncio.to_thread(unreadable) == 404


def bundle_report(objects: list[dict[str, Any]]) -> str:
    return next(str(o["id"]) for o in objects if o["type"] == "report")


async def test_taxii_answers_problems_without_a_key_and_for_a_bad_next(actors: Actors) -> None:
    cid = (await actors.crisis())["id"]
    r = await actors.http.get("/taxii2/")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    path = f"/taxii2/api/collections/{cid}/objects/"
    r = await actors.call("GET", path, "authority", params={"next": "bm90LWEtdG9rZW4"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_next", r.text
    r = await actors.call("GET", path, "authority", params={"limit": 1})
    assert r.headers["content-type"] == TAXII and r.json()["more"] is True
    assert r.headers["X-TAXII-Date-Added-First"] == r.headers["X-TAXII-Date-Added-Last"]
    manifest = await actors.call("GET", f"/taxii2/api/collections/{cid}/manifest/", "authority")
    assert {m["id"] for m in manifest.json()["objects"]} == {
        o["id"] for o in (await actors.call("GET", path, "authority")).json()["objects"]
    }
    assert HIDDEN_MD5 not in manifest.text
    r = await actors.call("GET", "/taxii2/api/collections/", "observer")
    assert r.status_code == 403, r.text
