"""Honest retries: the same Idempotency-Key with the same request gets the first answer; with a different
request it gets 422 `idempotency_key_reused`, never the earlier answer, on every write route and on any
API process, including one started after the first request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crisis.api.problems import PROBLEM
from crisis.config import Settings
from crisis.domain.enums import Role
from crisis.keys import KeyStore
from tests.api.conftest import Actors, ApiProcess, api_processes, auth

pytestmark = pytest.mark.kafka

AMBER_MONITORING = {"title": "Early warning", "status": "monitoring"}
RED_LEVEL_3 = {
    "title": "Attack",
    "status": "activated",
    "level": 3,
    "criteria": ["ongoing_violent_event"],
    "tlp": "red",
    "tlprecipients": ["vidshare"],
}


def reused(r: httpx.Response) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == "idempotency_key_reused"


def key(name: str) -> dict[str, str]:
    return {"Idempotency-Key": name}


async def test_opening_a_crisis(actors: Actors) -> None:
    first = await actors.call("POST", "/v1/crises", "coordinator", json=AMBER_MONITORING, headers=key("k1"))
    assert first.status_code == 201, first.text
    reused(await actors.call("POST", "/v1/crises", "coordinator", json=RED_LEVEL_3, headers=key("k1")))
    again = await actors.call("POST", "/v1/crises", "coordinator", json=AMBER_MONITORING, headers=key("k1"))
    assert again.status_code == 201 and again.json() == first.json()
    # The same key from another organisation is another key.
    other = await actors.call(
        "POST", "/v1/crises", "coordinator", "eu-hub", json=RED_LEVEL_3, headers=key("k1")
    )
    assert other.status_code == 201 and other.json()["level"] == 3
    listed = await actors.call("GET", "/v1/crises", "coordinator")
    assert [c["id"] for c in listed.json()["items"]] == [first.json()["id"]]


async def test_changing_the_level(actors: Actors) -> None:
    crisis = await actors.crisis()
    path = f"/v1/crises/{crisis['id']}/transitions"
    to_2 = {"to": "activated", "level": 2, "expected_version": 1}
    first = await actors.call("POST", path, "coordinator", json=to_2, headers=key("k2"))
    assert first.status_code == 200 and first.json()["level"] == 2
    reused(await actors.call("POST", path, "coordinator", json=to_2 | {"level": 3}, headers=key("k2")))
    again = await actors.call("POST", path, "coordinator", json=to_2, headers=key("k2"))
    assert again.status_code == 200 and again.json()["event_id"] == first.json()["event_id"]
    state = await actors.call("GET", f"/v1/crises/{crisis['id']}", "coordinator")
    assert (state.json()["level"], state.json()["version"]) == (2, 2)


async def test_sharing_indicators(actors: Actors) -> None:
    crisis = await actors.crisis()
    a, b = {"kind": "md5", "value": "a" * 32}, {"kind": "md5", "value": "b" * 32}
    first = await actors.share(crisis["id"], [a], headers=key("k3"))
    assert first.json()["items"][0]["status"] == "created"
    reused(await actors.share(crisis["id"], [b], headers=key("k3")))
    reused(await actors.share(crisis["id"], [a], tlp="red", tlprecipients=["vidshare"], headers=key("k3")))
    again = await actors.share(crisis["id"], [a], headers=key("k3"))
    assert again.json() == first.json()
    listed = await actors.call("GET", f"/v1/crises/{crisis['id']}/indicators", "authority")
    assert [i["value"] for i in listed.json()["items"]] == ["a" * 32]


async def test_retracting_and_reporting_actions(actors: Actors) -> None:
    crisis = await actors.crisis()
    x = await actors.shared_id(crisis["id"], {"kind": "md5", "value": "c" * 32})
    y = await actors.shared_id(crisis["id"], {"kind": "md5", "value": "d" * 32})
    base = f"/v1/crises/{crisis['id']}"
    ack: dict[str, Any] = {"indicator_id": x, "outcome": "received"}
    first = await actors.call("POST", f"{base}/actions", "provider", json=ack, headers=key("k4"))
    assert first.status_code == 201, first.text
    reused(
        await actors.call(
            "POST", f"{base}/actions", "provider", json=ack | {"outcome": "removed"}, headers=key("k4")
        )
    )
    reused(
        await actors.call(
            "POST", f"{base}/actions", "provider", json=ack | {"indicator_id": y}, headers=key("k4")
        )
    )
    again = await actors.call("POST", f"{base}/actions", "provider", json=ack, headers=key("k4"))
    assert again.status_code == 201 and again.json() == first.json()

    retract = await actors.call(
        "POST", f"{base}/indicators/{x}/retract", "authority", json={"reason": "wrong"}, headers=key("k5")
    )
    assert retract.status_code == 200, retract.text
    reused(
        await actors.call(
            "POST", f"{base}/indicators/{x}/retract", "authority", json={"reason": "other"}, headers=key("k5")
        )
    )
    reused(
        await actors.call(
            "POST", f"{base}/indicators/{y}/retract", "authority", json={"reason": "wrong"}, headers=key("k5")
        )
    )
    listed = await actors.call("GET", f"{base}/indicators", "authority", params={"retracted": "true"})
    assert [i["indicator_id"] for i in listed.json()["items"]] == [x]


async def test_a_process_started_later_knows_the_first_request(settings: Settings) -> None:
    _, hub = KeyStore(settings.keys_file).add("hub", Role.COORDINATOR)
    with api_processes(settings, 1) as [first_process]:
        async with httpx.AsyncClient(headers=auth(hub) | key("k6"), timeout=30) as http:
            first = await http.post(f"{first_process.url}/v1/crises", json=AMBER_MONITORING)
            assert first.status_code == 201, first.text
            later = ApiProcess(settings)  # folds the log from its beginning
            try:
                later.wait_ready()
                reused(await http.post(f"{later.url}/v1/crises", json=RED_LEVEL_3))
                again = await http.post(f"{later.url}/v1/crises", json=AMBER_MONITORING)
                assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
            finally:
                later.stop()
