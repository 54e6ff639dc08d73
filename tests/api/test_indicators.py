"""Sharing indicators in batches, sightings, retraction and TLP filtering, on a real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from crisis.api.routes.indicators import BatchResult
from tests.api.conftest import Actors, auth
from tests.conftest import every_adapter

pytestmark = every_adapter

SHA = "a" * 64
URL = {"kind": "url", "value": "HTTPS://Example.COM:443/a/../watch?v=X#t=1"}


async def test_a_batch_answers_every_item_in_order_with_partial_success(actors: Actors) -> None:
    crisis = await actors.crisis()
    items = [
        {"kind": "sha256", "value": SHA},
        {"kind": "sha256", "value": "g" * 64},  # not hex: refused on its own
        "not an object",
        URL,
        {"kind": "md5", "value": "0" * 32, "quality": 5},
        {"kind": "sha256", "value": SHA},  # a repeat within the batch: a sighting
    ]
    r = await actors.share(crisis["id"], items)
    assert r.status_code == 200, r.text
    body = r.json()
    BatchResult.model_validate(body)  # the route builds plain dicts for speed: they must fit the model
    assert body["counts"] == {"created": 2, "sighting": 1, "rejected": 3}
    statuses = [(i["index"], i["status"]) for i in body["items"]]
    assert statuses == [
        (0, "created"),
        (1, "rejected"),
        (2, "rejected"),
        (3, "created"),
        (4, "rejected"),
        (5, "sighting"),
    ]
    first, not_hex, _, url, quality, repeat = body["items"]
    assert not_hex["error"]["field"] == "value" and "hexadecimal" in not_hex["error"]["message"]
    assert quality["error"]["field"] == "quality"
    assert repeat["sighting_of"] == first["indicator_id"] == repeat["indicator_id"]
    listed = await actors.call("GET", f"/v1/crises/{crisis['id']}/indicators", "provider")
    assert listed.status_code == 200
    by_id = {i["indicator_id"]: i for i in listed.json()["items"]}
    assert by_id[url["indicator_id"]]["canonical"] == "https://example.com/watch?v=X"
    assert [s["org"] for s in by_id[first["indicator_id"]]["sightings"]] == ["bka"]


async def test_a_repeat_in_a_later_batch_is_a_sighting_by_the_other_org(actors: Actors) -> None:
    crisis = await actors.crisis()
    original = await actors.shared_id(crisis["id"], {"kind": "sha256", "value": SHA})
    r = await actors.share(crisis["id"], [{"kind": "sha256", "value": SHA}], role="provider")
    [item] = r.json()["items"]
    assert item == {**item, "status": "sighting", "sighting_of": original, "indicator_id": original}
    listed = (await actors.call("GET", f"/v1/crises/{crisis['id']}/indicators", "coordinator")).json()
    assert listed["total"] == 1
    assert [s["org"] for s in listed["items"][0]["sightings"]] == ["vidshare"]


async def test_more_than_max_batch_items_get_413(actors: Actors) -> None:
    crisis = await actors.crisis()
    items = [{"kind": "md5", "value": f"{i:032x}"} for i in range(actors.stack.settings.max_batch + 1)]
    r = await actors.share(crisis["id"], items)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "batch_too_large"


async def test_a_closed_crisis_takes_no_indicators(actors: Actors) -> None:
    crisis = await actors.crisis(status="monitoring", level=None)
    r = await actors.call(
        "POST",
        f"/v1/crises/{crisis['id']}/transitions",
        "coordinator",
        json={"to": "closed", "expected_version": 1},
    )
    assert r.status_code == 200, r.text
    r = await actors.share(crisis["id"], [{"kind": "sha256", "value": SHA}])
    assert r.status_code == 409 and r.json()["code"] == "crisis_closed"


async def test_a_retried_batch_with_the_same_idempotency_key_makes_no_second_event(actors: Actors) -> None:
    crisis = await actors.crisis()
    headers = {**auth(actors.key("authority")), "Idempotency-Key": "batch-1"}
    body = {"indicators": [{"kind": "sha1", "value": "b" * 40}, URL]}
    path = f"/v1/crises/{crisis['id']}/indicators"
    first = await actors.http.post(path, json=body, headers=headers)
    again = await actors.http.post(path, json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert first.json()["counts"]["created"] == 2
    record = actors.stack.ledger.book.crises[crisis["id"]]
    assert len(record.indicators) == 2
    assert all(not ind.sightings for ind in record.indicators.values())


async def test_retraction_by_the_sharer_or_a_coordinator_only(actors: Actors) -> None:
    crisis = await actors.crisis()
    by_bka = await actors.shared_id(crisis["id"], {"kind": "md5", "value": "1" * 32})
    by_bka_2 = await actors.shared_id(crisis["id"], {"kind": "md5", "value": "2" * 32})
    path = f"/v1/crises/{crisis['id']}/indicators/{{}}/retract"
    other_provider = await actors.call("POST", path.format(by_bka), "provider", json={"reason": "mine?"})
    assert other_provider.status_code == 403
    other_authority = await actors.call("POST", path.format(by_bka), "authority", org="police-nl")
    assert other_authority.status_code == 403
    own = await actors.call("POST", path.format(by_bka), "authority", json={"reason": "false positive"})
    assert own.status_code == 200, own.text
    assert own.json()["retracted"] is True
    again = await actors.call("POST", path.format(by_bka), "authority")
    assert again.status_code == 409
    hub = await actors.call("POST", path.format(by_bka_2), "coordinator")
    assert hub.status_code == 200
    missing = await actors.call("POST", path.format("nope"), "coordinator")
    assert missing.status_code == 404
    # After a retraction the same value is a new indicator, not a sighting of the withdrawn one.
    r = await actors.share(crisis["id"], [{"kind": "md5", "value": "1" * 32}])
    assert r.json()["items"][0]["status"] == "created"


async def test_indicator_tlp_filters_reads_and_cannot_be_wider_than_the_crisis(actors: Actors) -> None:
    crisis = await actors.crisis(tlp="amber")
    wider = await actors.share(crisis["id"], [{"kind": "md5", "value": "3" * 32}], tlp="green")
    assert wider.status_code == 422 and wider.json()["code"] == "tlp_wider_than_crisis"
    red = await actors.share(
        crisis["id"], [{"kind": "md5", "value": "4" * 32}], tlp="red", tlprecipients=["vidshare"]
    )
    assert red.status_code == 200, red.text
    red_id = red.json()["items"][0]["indicator_id"]
    amber_id = await actors.shared_id(crisis["id"], {"kind": "md5", "value": "5" * 32})

    async def visible(role: str, org: str | None = None) -> set[str]:
        r = await actors.call("GET", f"/v1/crises/{crisis['id']}/indicators", role, org)
        assert r.status_code == 200, r.text
        return {i["indicator_id"] for i in r.json()["items"]}

    assert await visible("provider") == {red_id, amber_id}  # named recipient
    assert await visible("authority") == {red_id, amber_id}  # the author
    assert await visible("coordinator") == {red_id, amber_id}  # the crisis's declarer is always named
    assert await visible("provider", "tubeco") == {amber_id}  # not named: RED is not for it
    assert await visible("provider", org="tubeco") == {amber_id}
    # An organisation that may not read the RED indicator cannot act on it or see it in the report.
    ack = await actors.call(
        "POST",
        f"/v1/crises/{crisis['id']}/actions",
        "provider",
        org="tubeco",
        json={"indicator_id": red_id, "outcome": "received"},
    )
    assert ack.status_code == 404
    report = (await actors.call("GET", f"/v1/crises/{crisis['id']}/report", "provider", "tubeco")).json()
    assert {i["indicator_id"] for i in report["indicators"]} == {amber_id}
    assert all(red_id not in t["summary"] for t in report["timeline"])


async def test_red_crisis_is_invisible_outside_its_recipients(actors: Actors) -> None:
    crisis = await actors.crisis(tlp="red", tlprecipients=["bka"])
    for role, org, expected in [
        ("authority", None, 200),
        ("coordinator", None, 200),
        ("provider", None, 404),
        ("observer", None, 404),
    ]:
        r = await actors.call("GET", f"/v1/crises/{crisis['id']}", role, org)
        assert r.status_code == expected, (role, r.text)
    listed = await actors.call("GET", "/v1/crises", "provider")
    assert crisis["id"] not in {c["id"] for c in listed.json()["items"]}


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 65536):
        yield data[i : i + 65536]


async def test_a_chunked_body_over_the_limit_gets_413(actors: Actors) -> None:
    crisis = await actors.crisis()
    big = b'{"indicators": [' + b'{"kind":"md5","value":"' + b"0" * 3_000_000 + b'"}]}'
    r = await actors.http.post(
        f"/v1/crises/{crisis['id']}/indicators",
        content=_chunks(big),
        headers={**auth(actors.key("authority")), "Content-Type": "application/json"},
    )
    assert "content-length" not in r.request.headers
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_observers_see_only_clear_crisis_state(actors: Actors) -> None:
    clear = await actors.crisis(tlp="clear")
    green = await actors.crisis(tlp="green")
    listed = await actors.call("GET", "/v1/crises", "observer")
    ids = {c["id"] for c in listed.json()["items"]}
    assert clear["id"] in ids and green["id"] not in ids
    assert (await actors.call("GET", f"/v1/crises/{green['id']}", "observer")).status_code == 404
    for path in ("indicators", "report"):
        r = await actors.call("GET", f"/v1/crises/{clear['id']}/{path}", "observer")
        assert r.status_code == 403


async def test_exercise_only_keys_act_only_on_exercise_crises(actors: Actors) -> None:
    live = await actors.crisis()
    exercise = await actors.crisis(mode="exercise")
    controller = actors.stack.add_key("exercise-control", "coordinator", exercise_only=True)
    async with httpx.AsyncClient(base_url=actors.stack.api_url, headers=auth(controller)) as http:
        listed = {c["id"] for c in (await http.get("/v1/crises")).json()["items"]}
        assert listed == {exercise["id"]}
        assert (await http.get(f"/v1/crises/{live['id']}")).status_code == 404
        body = {"indicators": [{"kind": "md5", "value": "6" * 32}]}
        assert (await http.post(f"/v1/crises/{live['id']}/indicators", json=body)).status_code == 404
        assert (await http.post(f"/v1/crises/{exercise['id']}/indicators", json=body)).status_code == 200
        opened = await http.post("/v1/crises", json={"title": "live?"})
        assert opened.status_code == 403
