"""A subscription on real sockets: current state first, then live events, filtered and handled per TLP."""

from __future__ import annotations

import json

from crisis.domain.enums import IndicatorKind, Mode, Tlp
from crisis.gateway import cursor as cursors
from tests.conftest import Stack, every_adapter
from tests.gateway.conftest import client, events, open_crisis, recv
from tests.gateway.events import action_reported, indicator_shared

pytestmark = every_adapter


async def test_a_first_subscription_gets_the_state_of_each_crisis_then_its_events(full_stack: Stack) -> None:
    s = full_stack
    crisis = await open_crisis(s)
    old = indicator_shared(crisis, kind=IndicatorKind.MD5)
    await s.ledger.write([old])
    key = s.add_key("vidshare", "provider")
    async with client(s.ws_url, key, type="indicator.shared") as ws:
        hello = await recv(ws)
        state = await recv(ws)
        assert state["type"] == "state" and state["crisis"]["id"] == crisis.subject
        assert state["crisis"]["version"] == 1 and "indicators" not in state
        assert state["cursor"] == hello["cursor"]
        new = indicator_shared(crisis)
        await s.ledger.write([new])
        [event] = await events(ws, 1)
        assert event["id"] == new.id and event["type"] == "indicator.shared"
        assert cursors.decode(event["cursor"]).offsets > cursors.decode(hello["cursor"]).offsets


async def test_filters_by_crisis_type_kind_and_mode(full_stack: Stack) -> None:
    s = full_stack
    live, other = await open_crisis(s), await open_crisis(s)
    drill = await open_crisis(s, mode=Mode.EXERCISE)
    key = s.add_key("vidshare", "provider")
    async with (
        client(s.ws_url, key, crisis=live.subject, kind="sha256") as only_live,
        client(s.ws_url, key, mode="exercise", type="indicator.shared") as only_drill,
        client(s.ws_url, key, mode="both", type="crisis.*,indicator.shared", kind="md5") as both,
    ):
        for ws in (only_live, only_drill, both):
            assert (await recv(ws))["type"] == "subscribed"
        sha = indicator_shared(live, kind=IndicatorKind.SHA256)
        md5 = indicator_shared(live, kind=IndicatorKind.MD5)
        elsewhere = indicator_shared(other)
        exercise = indicator_shared(drill, kind=IndicatorKind.MD5)
        ack = action_reported(sha)
        marker = indicator_shared(drill, kind=IndicatorKind.SHA1)
        await s.ledger.write([sha, md5, elsewhere, exercise])
        await s.ledger.write([ack])
        await s.ledger.write([marker])
        got_live = [e["id"] for e in await events(only_live, 2)]
        got_drill = [e["id"] for e in await events(only_drill, 2)]
        assert got_live == [sha.id, ack.id]  # the action concerns a sha256 indicator
        assert got_drill == [exercise.id, marker.id]
        # Two crises, two partitions: their relative order is the gateway's read order, not the write's.
        assert {e["id"] for e in await events(both, 2)} == {md5.id, exercise.id}


async def test_tlp_red_reaches_only_its_recipients_and_its_author(full_stack: Stack) -> None:
    s = full_stack
    crisis = await open_crisis(s, tlp=Tlp.GREEN)
    keys = {org: s.add_key(org, "provider") for org in ("vidshare", "tubeco")}
    author = s.add_key("bka", "authority")
    observer = s.add_key("press", "observer")
    async with (
        client(s.ws_url, keys["vidshare"]) as named,
        client(s.ws_url, keys["tubeco"]) as unnamed,
        client(s.ws_url, author) as sharer,
        client(s.ws_url, observer) as press,
    ):
        for ws in (named, unnamed, sharer, press):
            await recv(ws)
        for ws in (named, unnamed, sharer):
            assert (await recv(ws))["type"] == "state"  # a green crisis is visible to all three
        red = indicator_shared(crisis, "bka", tlp=Tlp.RED, recipients=("vidshare",))
        green = indicator_shared(crisis, "bka", tlp=Tlp.GREEN)
        await s.ledger.write([red, green])
        clear = await open_crisis(s, tlp=Tlp.CLEAR)
        assert [e["id"] for e in await events(named, 3)] == [red.id, green.id, clear.id]
        assert [e["id"] for e in await events(sharer, 3)] == [red.id, green.id, clear.id]
        assert [e["id"] for e in await events(unnamed, 2)] == [green.id, clear.id]
        # Observers read crisis state at TLP:CLEAR only: the green crisis and its indicators never arrive.
        assert [e["id"] for e in await events(press, 1)] == [clear.id]


async def test_a_subscribe_message_replaces_the_subscription(full_stack: Stack) -> None:
    s = full_stack
    a, b = await open_crisis(s), await open_crisis(s)
    key = s.add_key("vidshare", "provider")
    async with client(s.ws_url, key, crisis=a.subject) as ws:
        await recv(ws)
        await recv(ws)  # state of a
        await ws.send(json.dumps({"type": "subscribe", "crises": [b.subject], "types": ["indicator.shared"]}))
        hello = await recv(ws)
        assert hello["type"] == "subscribed" and hello["filter"]["crises"] == [b.subject]
        assert (await recv(ws))["crisis"]["id"] == b.subject
        await s.ledger.write([indicator_shared(a), only_b := indicator_shared(b)])
        assert [e["id"] for e in await events(ws, 1)] == [only_b.id]
