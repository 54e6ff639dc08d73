"""Shared state that never leaks: de-duplication within an audience, recipients that mean something,
sightings as events of their own. Each test reproduces a reported problem through the real API, the real
broker and, where the problem concerns the stream, the real gateway."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path
from typing import Any

import httpx
import pytest

from crisis.config import Settings
from crisis.domain.enums import EventType, Role, Tlp
from crisis.domain.envelope import Envelope, source_for
from crisis.keys import KeyStore
from crisis.orgs import OrgRegistry
from tests.api.conftest import ORGS, Actors, api_processes
from tests.client.test_tail_and_bot import load_bot
from tests.conftest import Stack
from tests.gateway.conftest import client, events

pytestmark = pytest.mark.kafka

MD5 = "9" * 32
REGISTERED = [*ORGS.values(), "tubeco", "clipbox", "eu-hub"]
ACTIVATED = {"status": "activated", "level": 1, "criteria": ["ongoing_violent_event"]}


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    """One partition, so events of different crises reach a subscriber in the order they were written
    (a later event it may read proves that an earlier one it may not read was never delivered); and a
    registry of organisations."""
    result: Settings = make_settings(kafka_partitions=1)
    registry = OrgRegistry(result.orgs_file)
    for org in REGISTERED:
        registry.add(org)
    return result


async def test_a_share_outside_a_red_indicators_audience_stands_as_its_own_indicator(actors: Actors) -> None:
    crisis = await actors.crisis()
    cid = crisis["id"]
    red = await actors.share(cid, [{"kind": "md5", "value": MD5}], tlp="red", tlprecipients=["vidshare"])
    red_id = red.json()["items"][0]["indicator_id"]

    # tubeco is outside the RED indicator's audience and shares the same hash at AMBER.
    amber = await actors.share(cid, [{"kind": "md5", "value": MD5}], "provider", "tubeco")
    assert amber.status_code == 200, amber.text
    [item] = amber.json()["items"]
    assert item["status"] == "created" and item["sighting_of"] is None
    assert red_id not in amber.text
    amber_id = item["indicator_id"]

    # A third provider sees tubeco's indicator and acknowledges it.
    listed = await actors.call("GET", f"/v1/crises/{cid}/indicators", "provider", "clipbox")
    assert [i["indicator_id"] for i in listed.json()["items"]] == [amber_id]
    ack = await actors.call(
        "POST",
        f"/v1/crises/{cid}/actions",
        "provider",
        "clipbox",
        json={"indicator_id": amber_id, "outcome": "received"},
    )
    assert ack.status_code == 201, ack.text

    # No reader's report calls it a sighting; only the RED audience hears of the RED id at all.
    for role, org in [("provider", "tubeco"), ("provider", "clipbox"), ("provider", "vidshare")]:
        report = await actors.call("GET", f"/v1/crises/{cid}/report", role, org)
        assert report.status_code == 200
        assert "seen again" not in report.text and "sighting of" not in report.text
        assert (red_id in report.text) is (org == "vidshare")
        markdown = await actors.call(
            "GET", f"/v1/crises/{cid}/report", role, org, headers={"Accept": "text/markdown"}
        )
        assert (red_id in markdown.text) is (org == "vidshare")


async def test_answers_about_an_unreadable_indicator_match_those_about_a_missing_one(actors: Actors) -> None:
    crisis = await actors.crisis()
    cid = crisis["id"]
    red = await actors.share(cid, [{"kind": "md5", "value": MD5}], tlp="red", tlprecipients=["vidshare"])
    red_id = red.json()["items"][0]["indicator_id"]
    for indicator_id in (red_id, "00000000-0000-0000-0000-000000000000"):
        ack = await actors.call(
            "POST",
            f"/v1/crises/{cid}/actions",
            "provider",
            "tubeco",
            json={"indicator_id": indicator_id, "outcome": "received"},
        )
        retract = await actors.call(
            "POST", f"/v1/crises/{cid}/indicators/{indicator_id}/retract", "coordinator", "clipbox"
        )
        assert (ack.status_code, retract.status_code) == (404, 404)
        assert ack.json()["code"] == retract.json()["code"] == "not_found"


async def test_a_repeat_share_is_an_indicator_sighted_event_naming_the_existing_indicator(
    full_stack: Stack,
) -> None:
    s = full_stack
    keys = {org: s.add_key(org, role) for org, role in [("hub", "coordinator"), ("bka", "authority")]}
    provider = s.add_key("vidshare", "provider")
    async with httpx.AsyncClient(base_url=s.api_url, timeout=15) as http:
        crisis = await post(http, keys["hub"], "/v1/crises", {"title": "Attack", **ACTIVATED})
        cid = crisis["id"]
        async with client(s.ws_url, provider, crisis=cid, type="indicator.shared,indicator.sighted") as ws:
            await asyncio.sleep(0.2)
            first = await post(http, keys["bka"], f"/v1/crises/{cid}/indicators", share_body())
            again = await post(http, keys["hub"], f"/v1/crises/{cid}/indicators", share_body())
            first_id = first["items"][0]["indicator_id"]
            assert again["items"][0] | {"event_id": None} == {
                "index": 0,
                "status": "sighting",
                "indicator_id": first_id,
                "sighting_of": first_id,
                "event_id": None,
                "error": None,
            }
            shared, sighted = await events(ws, 2)
        assert shared["type"] == "indicator.shared" and shared["data"]["indicator_id"] == first_id
        assert sighted["type"] == "indicator.sighted" and sighted["id"] == again["items"][0]["event_id"]
        assert sighted["data"]["indicator_id"] == first_id and sighted["data"]["sighted_by"] == "hub"
        ack = await http.post(
            f"/v1/crises/{cid}/actions",
            json={"indicator_id": sighted["data"]["indicator_id"], "outcome": "removed"},
            headers={"Authorization": f"Bearer {provider}"},
        )
        assert ack.status_code == 201, ack.text


async def test_the_provider_bot_acknowledges_sightings_and_reports_refusals_as_refused(
    full_stack: Stack, tmp_path: Path
) -> None:
    s = full_stack
    bot = load_bot()
    hub, bka, provider = (
        s.add_key("hub", "coordinator"),
        s.add_key("bka", "authority"),
        s.add_key("vidshare", "provider"),
    )
    calls = 0

    async def act(event: Any) -> tuple[str, str]:
        nonlocal calls
        calls += 1
        # The second answer is not an outcome the API knows: the bot must not print it as done.
        return ("blocked", "") if calls == 1 else ("vaporised", "")

    async with httpx.AsyncClient(base_url=s.api_url, timeout=15) as http:
        crisis = await post(http, hub, "/v1/crises", {"title": "Attack", **ACTIVATED})
        cid = crisis["id"]
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            running = asyncio.create_task(bot.run(s.ws_url, s.api_url, provider, act=act, limit=2))
            await asyncio.sleep(0.3)
            first = await post(http, bka, f"/v1/crises/{cid}/indicators", share_body())
            await post(http, hub, f"/v1/crises/{cid}/indicators", share_body())
            assert await asyncio.wait_for(running, 15) == 2
    first_id = first["items"][0]["indicator_id"]
    lines = [line for line in out.getvalue().splitlines() if line.startswith(cid)]  # not the log lines
    assert "indicator.shared" in lines[0] and first_id in lines[0] and lines[0].endswith(": blocked")
    assert "indicator.sighted" in lines[1] and first_id in lines[1] and "NOT recorded (422)" in lines[1]
    actions = [(d.indicator_id, d.outcome.value) for _, d in s.ledger.book.crises[cid].actions]
    assert actions == [(first_id, "received"), (first_id, "blocked")]  # the sighting's receipt is a retry


async def test_recipients_stay_within_the_crisis_audience_and_the_stream_never_widens(
    full_stack: Stack,
) -> None:
    s = full_stack
    hub, vid, tube = (
        s.add_key("hub", "coordinator"),
        s.add_key("vidshare", "provider"),
        s.add_key("tubeco", "provider"),
    )
    async with httpx.AsyncClient(base_url=s.api_url, timeout=15) as http, client(s.ws_url, tube) as ws:
        await asyncio.sleep(0.2)
        red = await post(
            http,
            hub,
            "/v1/crises",
            {
                "title": "Closed group",
                "status": "activated",
                "level": 2,
                "criteria": ["ongoing_violent_event"],
                "tlp": "red",
                "tlprecipients": ["bka", "vidshare"],
            },
        )
        widened = await http.post(
            f"/v1/crises/{red['id']}/indicators",
            json={"indicators": [{"kind": "md5", "value": MD5}], "tlprecipients": ["tubeco"]},
            headers={"Authorization": f"Bearer {vid}"},
        )
        assert widened.status_code == 422 and widened.json()["code"] == "recipients_outside_crisis"
        # A record written by hand (not through the API) meets the same rule in the fold.
        forged = Envelope(
            source=source_for("vidshare", "k"),
            type=EventType.INDICATOR_SHARED,
            subject=red["id"],
            tlp=Tlp.RED,
            mode=red["mode"],
            tlprecipients=("tubeco", "hub"),
            role=Role.PROVIDER,
            data={
                "kind": "md5",
                "value": MD5,
                "canonical": MD5,
                "indicator_id": "forged",
                "shared_by": "vidshare",
            },
        )
        [outcome] = await s.ledger.write([forged])
        assert outcome.code == "recipients_outside_crisis" and not outcome.deliverable
        sentinel = await post(http, hub, "/v1/crises", {"title": "Open one", "status": "monitoring"})
        [first] = await events(ws, 1)
    # The first event tubeco receives is the later, open crisis: nothing of the RED one came before it.
    assert first["subject"] == sentinel["id"]


async def test_red_and_amber_strict_need_a_registered_recipient(actors: Actors) -> None:
    for tlp in ("red", "amber+strict"):
        body = {
            "title": "Attack",
            "status": "activated",
            "level": 1,
            "criteria": ["ongoing_violent_event"],
            "tlp": tlp,
        }
        none = await actors.call("POST", "/v1/crises", "coordinator", json=body)
        assert none.status_code == 422 and none.json()["code"] == "recipients_required", none.text
        typo = await actors.call(
            "POST", "/v1/crises", "coordinator", json=body | {"tlprecipients": ["vidshrae"]}
        )
        assert typo.status_code == 422 and typo.json()["code"] == "unknown_org"
        assert typo.json()["errors"] == [
            {"field": "tlprecipients.0", "message": "vidshrae is not registered"}
        ]
    crisis = await actors.crisis()
    item = [{"kind": "md5", "value": MD5}]
    for tlp in ("red", "amber+strict"):
        none = await actors.share(crisis["id"], item, tlp=tlp, tlprecipients=[])
        assert none.status_code == 422 and none.json()["code"] == "recipients_required"
        typo = await actors.share(crisis["id"], item, tlp=tlp, tlprecipients=["vidshrae"])
        assert typo.status_code == 422 and typo.json()["code"] == "unknown_org"
    listed = await actors.call("GET", f"/v1/crises/{crisis['id']}/indicators", "authority")
    assert listed.json()["total"] == 0


async def test_the_declarer_of_a_red_crisis_sees_everything_inside_it(full_stack: Stack) -> None:
    s = full_stack
    hub, bka, vid = (
        s.add_key("hub", "coordinator"),
        s.add_key("bka", "authority"),
        s.add_key("vidshare", "provider"),
    )
    other_hub = s.add_key("eu-hub", "coordinator")
    async with httpx.AsyncClient(base_url=s.api_url, timeout=15) as http:
        body = {
            "title": "Closed",
            "status": "monitoring",
            "tlp": "red",
            "tlprecipients": ["bka", "vidshare", "eu-hub"],
        }
        crisis = await post(http, hub, "/v1/crises", body)
        cid = crisis["id"]
        async with client(s.ws_url, hub, crisis=cid) as ws:
            await asyncio.sleep(0.2)
            shared = await post(http, bka, f"/v1/crises/{cid}/indicators", share_body())
            indicator_id = shared["items"][0]["indicator_id"]
            action = {"indicator_id": indicator_id, "outcome": "removed"}
            await post(http, vid, f"/v1/crises/{cid}/actions", action, status=201)
            # Another coordinator activates it: the declarer still hears of it.
            activate = {
                "to": "activated",
                "expected_version": 1,
                "level": 2,
                "criteria": ["depicts_violence"],
            }
            await post(http, other_hub, f"/v1/crises/{cid}/transitions", activate)
            got = await events(ws, 3)
        assert [e["type"] for e in got] == ["indicator.shared", "action.reported", "crisis.activated"]
        listed = await http.get(f"/v1/crises/{cid}/indicators", headers={"Authorization": f"Bearer {hub}"})
        assert [i["indicator_id"] for i in listed.json()["items"]] == [indicator_id]
        assert set(listed.json()["items"][0]["tlprecipients"]) == {"bka", "vidshare", "eu-hub", "hub"}
        report = await http.get(f"/v1/crises/{cid}/report", headers={"Authorization": f"Bearer {hub}"})
        assert [p["org"] for p in report.json()["providers"]] == ["vidshare"]


async def test_forged_records_meet_the_same_rules_as_the_api(actors: Actors) -> None:
    ledger = actors.stack.ledger
    crisis = await actors.crisis()
    cid = crisis["id"]
    red = await actors.share(cid, [{"kind": "md5", "value": MD5}], tlp="red", tlprecipients=["vidshare"])
    red_id = red.json()["items"][0]["indicator_id"]

    def forged(org: str, role: Role, type: EventType, data: dict[str, Any], **handling: Any) -> Envelope:
        return Envelope(
            source=source_for(org, "k"),
            type=type,
            subject=cid,
            tlp=handling.get("tlp", Tlp.AMBER),
            tlprecipients=handling.get("recipients", ()),
            mode=crisis["mode"],
            role=role,
            data=data,
        )

    value = {"kind": "md5", "value": "1" * 32, "canonical": "1" * 32}
    cases = {
        "forbidden": [
            forged(
                "press",
                Role.OBSERVER,
                EventType.INDICATOR_SHARED,
                value | {"indicator_id": "x1", "shared_by": "press"},
            ),
            forged(
                "bka",
                Role.AUTHORITY,
                EventType.ACTION_REPORTED,
                action_data(red_id, "bka"),
                tlp=Tlp.RED,
                recipients=("vidshare", "bka", "hub"),
            ),
            forged(
                "bka",
                Role.AUTHORITY,
                EventType.INDICATOR_SHARED,
                value | {"indicator_id": "x2", "shared_by": "hub"},
            ),
        ],
        "unknown_indicator": [
            forged(
                "tubeco",
                Role.PROVIDER,
                EventType.ACTION_REPORTED,
                action_data(red_id, "tubeco"),
                tlp=Tlp.RED,
                recipients=("vidshare", "bka", "hub"),
            ),
        ],
        "handling_mismatch": [
            # An AMBER action about a RED indicator would tell everyone its id.
            forged("vidshare", Role.PROVIDER, EventType.ACTION_REPORTED, action_data(red_id, "vidshare")),
        ],
        "tlp_wider_than_crisis": [
            forged(
                "bka",
                Role.AUTHORITY,
                EventType.INDICATOR_SHARED,
                value | {"indicator_id": "x3", "shared_by": "bka"},
                tlp=Tlp.CLEAR,
            ),
        ],
    }
    for code, envelopes in cases.items():
        for env in envelopes:
            [outcome] = await ledger.write([env])
            assert (outcome.accepted, outcome.code) == (False, code), env


async def post(
    http: httpx.AsyncClient, key: str, path: str, body: dict[str, Any], status: int | None = None
) -> dict[str, Any]:
    r = await http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    expected = status or (201 if path.endswith("/v1/crises") else 200)
    assert r.status_code == expected, r.text
    result: dict[str, Any] = r.json()
    return result


async def until_visible(http: httpx.AsyncClient, key: str, urls: list[str], text: str = "") -> None:
    """Until every URL answers 200 (with `text` in its body): what one process wrote, the others fold a
    moment later."""
    headers = {"Authorization": f"Bearer {key}"}
    for _ in range(200):
        answers = [await http.get(url, headers=headers) for url in urls]
        if all(r.status_code == 200 and text in r.text for r in answers):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not visible on every process: {urls}")


def share_body() -> dict[str, Any]:
    return {"indicators": [{"kind": "md5", "value": MD5}]}


def action_data(indicator_id: str, org: str) -> dict[str, Any]:
    return {
        "indicator_id": indicator_id,
        "outcome": "removed",
        "provider_org": org,
        "at": "2026-03-15T13:40:00Z",
    }


async def test_the_same_value_shared_on_two_processes_at_once_leaves_only_ids_that_work(
    settings: Settings,
) -> None:
    store = KeyStore(settings.keys_file)
    hub, bka, vid = (
        store.add(org, Role(role))[1]
        for org, role in [("hub", "coordinator"), ("bka", "authority"), ("vidshare", "provider")]
    )
    with api_processes(settings, 2) as processes:
        urls = [p.url for p in processes]
        async with httpx.AsyncClient(timeout=30) as http:
            crisis = await post(
                http, hub, f"{urls[0]}/v1/crises", {"title": "Attack", **ACTIVATED}, status=201
            )
            cid = crisis["id"]
            # A client of two processes acts on the second once it has folded what the first wrote.
            await until_visible(http, hub, [f"{url}/v1/crises/{cid}" for url in urls])
            for n in range(5):
                value = {"indicators": [{"kind": "md5", "value": f"{n}" * 32}]}
                answers = await asyncio.gather(
                    *(
                        post(http, key, f"{url}/v1/crises/{cid}/indicators", value)
                        for url, key in zip(urls, (hub, bka), strict=True)
                    )
                )
                for answer in answers:
                    [item] = answer["items"]
                    assert item["status"] in ("created", "sighting"), item
                    ack = {"indicator_id": item["indicator_id"], "outcome": "received"}
                    listed = f"{urls[n % 2]}/v1/crises/{cid}/indicators?limit=10000"
                    await until_visible(http, vid, [listed], item["indicator_id"])
                    await post(http, vid, f"{urls[n % 2]}/v1/crises/{cid}/actions", ack, status=201)
