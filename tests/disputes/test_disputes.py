"""Disputes through the real API, broker and stream: a provider's `disagree` opens one that the sharer and
the hub see; a retraction reaches every recipient, who answer `reinstated`; only they may resolve it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Actors
from tests.gateway.conftest import client, events, recv

pytestmark = pytest.mark.kafka

URL = {"kind": "url", "value": "https://video.example/watch?v=attack"}


async def _disputed(actors: Actors) -> tuple[str, str, dict[str, Any]]:
    cid = (await actors.crisis())["id"]
    indicator = await actors.shared_id(cid, URL)  # shared by the authority "bka"
    body = {"indicator_id": indicator, "outcome": "disagree", "note": "a news report, not the attack"}
    said = await actors.call("POST", f"/v1/crises/{cid}/actions", "provider", json=body)
    assert said.status_code == 201, said.text
    listed = await actors.call("GET", f"/v1/crises/{cid}/disputes", "coordinator")
    [dispute] = listed.json()["items"]
    return cid, indicator, dispute


async def test_a_disagree_opens_a_dispute_the_sharer_and_the_hub_see(actors: Actors) -> None:
    cid, indicator, dispute = await _disputed(actors)
    assert dispute["indicator_id"] == indicator and dispute["status"] == "open"
    assert dispute["shared_by"] == "bka" and dispute["raised_by"] == ["vidshare"]
    by_sharer = await actors.call("GET", f"/v1/crises/{cid}/disputes", "authority")
    assert [d["id"] for d in by_sharer.json()["items"]] == [dispute["id"]]
    # Another provider of the crisis neither raised it nor shared the indicator.
    other = await actors.call("GET", f"/v1/crises/{cid}/disputes", "provider", "tubeco")
    assert other.status_code == 200 and other.json()["items"] == []


async def test_only_the_sharer_or_the_hub_resolves_and_only_once(actors: Actors) -> None:
    cid, _, dispute = await _disputed(actors)
    path = f"/v1/crises/{cid}/disputes/{dispute['id']}/resolution"
    by_raiser = await actors.call("POST", path, "provider", json={"outcome": "retracted"})
    assert by_raiser.status_code == 403 and by_raiser.json()["code"] == "forbidden"
    confirmed = await actors.call(
        "POST", path, "authority", json={"outcome": "confirmed", "reason": "checked"}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed" and confirmed.json()["resolved_by"] == "bka"
    again = await actors.call("POST", path, "coordinator", json={"outcome": "retracted"})
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    unknown = await actors.call(
        "POST", f"/v1/crises/{cid}/disputes/nope/resolution", "coordinator", json={"outcome": "retracted"}
    )
    assert unknown.status_code == 404
    bad = await actors.call("POST", path, "coordinator", json={"outcome": "maybe"})
    assert bad.status_code == 422 and bad.json()["errors"]


async def test_a_retraction_reaches_every_recipient_who_answer_reinstated(actors: Actors) -> None:
    s = actors.stack
    cid, indicator, dispute = await _disputed(actors)
    other = actors.key("provider", "tubeco")
    # Reinstating is only an answer to a retraction by dispute.
    early = {"indicator_id": indicator, "outcome": "reinstated"}
    refused = await actors.call("POST", f"/v1/crises/{cid}/actions", "provider", json=early)
    assert refused.status_code == 409, refused.text
    async with (
        client(s.ws_url, actors.key("provider"), type="dispute.resolved") as raiser,
        client(s.ws_url, other, type="dispute.resolved") as bystander,
    ):
        for ws in (raiser, bystander):
            assert (await recv(ws))["type"] == "subscribed"  # then the crisis's state, skipped by events()
        path = f"/v1/crises/{cid}/disputes/{dispute['id']}/resolution"
        done = await actors.call("POST", path, "coordinator", json={"outcome": "retracted", "reason": "news"})
        assert done.status_code == 200 and done.json()["status"] == "retracted"
        for ws in (raiser, bystander):
            [event] = await events(ws, 1)
            assert event["type"] == "dispute.resolved"
            assert event["data"]["outcome"] == "retracted" and event["data"]["indicator_id"] == indicator
    report = await actors.call("GET", f"/v1/crises/{cid}/report", "coordinator")
    assert report.status_code == 200, report.text
    summaries = [e["summary"] for e in report.json()["timeline"]]
    assert any("dispute on" in line and "retracted" in line for line in summaries), summaries
    shown = await actors.call("GET", f"/v1/crises/{cid}/indicators", "provider")
    assert [i["retracted"] for i in shown.json()["items"]] == [True]
    for role, org in (("provider", None), ("provider", "tubeco")):
        back = await actors.call("POST", f"/v1/crises/{cid}/actions", role, org, json=early)
        assert back.status_code == 201, back.text


async def test_a_share_of_a_warning_listed_url_needs_confirmation(actors: Actors) -> None:
    cid = (await actors.crisis())["id"]
    items = [URL, {"kind": "url", "value": "https://www.reuters.com/world/attack-live"}]
    held = await actors.share(cid, items)
    assert held.status_code == 422 and held.json()["code"] == "warning_listed"
    [error] = held.json()["errors"]
    assert error["field"] == "indicators.1.value" and "reuters.com" in error["message"]
    listed = await actors.call("GET", f"/v1/crises/{cid}/indicators", "authority")
    assert listed.json()["items"] == []  # nothing went out

    sent = await actors.share(cid, items, confirm_warnings=True)
    assert sent.status_code == 200, sent.text
    first, second = sent.json()["items"]
    assert first["status"] == second["status"] == "created"
    assert first.get("warning") is None and "reuters.com" in second["warning"]
