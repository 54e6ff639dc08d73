"""Opening and moving crises through the HTTP API, on a real broker and real sockets."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Stack, every_adapter

pytestmark = every_adapter


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


DECLARE = {
    "title": "Live-streamed attack",
    "status": "activated",
    "level": 2,
    "criteria": ["ongoing_violent_event", "viral_spread"],
    "jurisdictions": ["DE"],
}


async def test_declare_returns_the_crisis_once_kafka_has_it(api_stack: Stack) -> None:
    key = api_stack.add_key("hub", "coordinator")
    async with httpx.AsyncClient(base_url=api_stack.api_url) as http:
        r = await http.post("/v1/crises", json=DECLARE, headers=auth(key))
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["status"] == "activated" and body["level"] == 2 and body["version"] == 1
        assert r.headers["location"] == f"/v1/crises/{body['id']}"
        got = await http.get(f"/v1/crises/{body['id']}", headers=auth(key))
        assert got.status_code == 200 and got.json()["title"] == DECLARE["title"]
    # The event is in the log, folded by the reader, not only in the API's memory.
    assert body["event_id"] in api_stack.ledger.book.outcomes


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer cb_unknown_secret"])
async def test_requests_without_a_valid_key_get_401(api_stack: Stack, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient(base_url=api_stack.api_url) as http:
        r = await http.post("/v1/crises", json=DECLARE, headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 401


async def test_stale_version_gets_409(api_stack: Stack) -> None:
    key = api_stack.add_key("hub", "coordinator")
    async with httpx.AsyncClient(base_url=api_stack.api_url) as http:
        crisis = (await http.post("/v1/crises", json={"title": "Early warning"}, headers=auth(key))).json()
        path = f"/v1/crises/{crisis['id']}/transitions"
        ok = await http.post(
            path,
            json={"to": "activated", "level": 1, "criteria": ["viral_spread"], "expected_version": 1},
            headers=auth(key),
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["version"] == 2
        stale = await http.post(path, json={"to": "closed", "expected_version": 1}, headers=auth(key))
        assert stale.status_code == 409
        assert stale.json()["code"] == "stale_version"


async def test_revoked_key_is_refused(api_stack: Stack) -> None:
    record, key = api_stack.keys.add("hub", "coordinator")  # type: ignore[arg-type]
    api_stack.keys.revoke(record.id)
    async with httpx.AsyncClient(base_url=api_stack.api_url) as http:
        r = await http.get("/v1/crises", headers=auth(key))
    assert r.status_code == 401
