"""Clock events and backfill on real sockets: who hears of an overdue deadline, and history exactly once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from crisis.domain.enums import Role
from tests.conftest import Stack
from tests.gateway.conftest import client, events, open_crisis, recv
from tests.gateway.events import indicator_shared

pytestmark = pytest.mark.kafka


async def _until(ws: ClientConnection, event_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every event up to and including `event_id`."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not out or out[-1].get("id") != event_id:
            message = json.loads(await ws.recv())
            if "specversion" in message:
                out.append(message)
    return out


async def test_an_overdue_event_reaches_coordinators_and_the_late_provider_only(full_stack: Stack) -> None:
    s = full_stack
    keys = {org: s.add_key(org, role) for org, role in [("hub", Role.COORDINATOR), ("bka", Role.AUTHORITY)]}
    keys |= {org: s.add_key(org, Role.PROVIDER) for org in ("silent", "prompt", "bystander")}
    async with httpx.AsyncClient(base_url=s.api_url, timeout=15) as http:

        async def call(org: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            r = await http.post(path, json=body, headers={"Authorization": f"Bearer {keys[org]}"})
            assert r.status_code in (200, 201), r.text
            result: dict[str, Any] = r.json()
            return result

        declare = {"title": "Attack", "status": "activated", "level": 1, "criteria": ["viral_spread"]}
        crisis = await call(
            "hub", "/v1/crises", {**declare, "roster": ["silent", "prompt"], "receipt_deadline_s": 1}
        )
        cid = crisis["id"]
        async with (
            client(s.ws_url, keys["hub"], crisis=cid) as hub,
            client(s.ws_url, keys["silent"], crisis=cid) as silent,
            client(s.ws_url, keys["prompt"], crisis=cid) as prompt,
            client(s.ws_url, keys["bystander"], crisis=cid) as bystander,
            client(s.ws_url, keys["bka"], crisis=cid) as bka,
        ):
            everyone = (hub, silent, prompt, bystander, bka)
            for ws in everyone:
                assert (await recv(ws))["type"] == "subscribed"
            shared = await call(
                "bka", f"/v1/crises/{cid}/indicators", {"indicators": [{"kind": "md5", "value": "f" * 32}]}
            )
            [item] = shared["items"]
            await call(
                "prompt",
                f"/v1/crises/{cid}/actions",
                {"indicator_id": item["indicator_id"], "outcome": "received"},
            )
            # Shared, acknowledged, then a second later overdue for the provider that said nothing.
            first = await events(hub, 3)
            [overdue] = [e for e in first if e["type"] == "clock.overdue"]
            assert overdue["data"]["provider_org"] == "silent" and overdue["data"]["deadline"] == "receipt"
            assert overdue["subject"] == cid and overdue["source"] == "/clock"
            # A crisis event everyone receives marks the end of what each could have been sent.
            marker = await call(
                "hub", f"/v1/crises/{cid}/transitions", {"to": "activated", "level": 2, "expected_version": 1}
            )
            for ws in everyone:
                got = (first if ws is hub else []) + await _until(ws, marker["event_id"])
                overdues = [e["id"] for e in got if e["type"] == "clock.overdue"]
                assert overdues == ([overdue["id"]] if ws in (hub, silent) else []), ws


async def test_backfill_gives_the_history_from_the_start_then_live_each_event_once(full_stack: Stack) -> None:
    s = full_stack
    crisis, other = await open_crisis(s), await open_crisis(s)
    earlier = [indicator_shared(crisis) for _ in range(30)] + [indicator_shared(other)]
    await s.ledger.write(earlier)
    key = s.add_key("vidshare", "provider")
    async with client(s.ws_url, key, crisis=crisis.subject, backfill="true") as ws:
        assert (await recv(ws))["type"] == "subscribed"
        later = [indicator_shared(crisis) for _ in range(5)]
        await s.ledger.write(later)
        got = await _until(ws, later[-1].id)
    expected = [crisis.id] + [e.id for e in earlier[:30]] + [e.id for e in later]
    assert [e["id"] for e in got] == expected


async def test_backfill_without_crises_leaves_out_closed_ones_and_refuses_a_cursor(full_stack: Stack) -> None:
    s = full_stack
    open_, closed = await open_crisis(s), await open_crisis(s)
    old = [indicator_shared(open_), indicator_shared(closed)]
    await s.ledger.write(old)
    coordinator = s.add_key("hub", "coordinator")
    async with httpx.AsyncClient(base_url=s.api_url, timeout=15) as http:
        r = await http.post(
            f"/v1/crises/{closed.subject}/transitions",
            json={"to": "closed", "expected_version": 1},
            headers={"Authorization": f"Bearer {coordinator}"},
        )
        assert r.status_code == 200, r.text
    key = s.add_key("vidshare", "provider")
    async with client(s.ws_url, key, type="indicator.shared", backfill="true") as ws:
        hello = await recv(ws)
        assert hello["type"] == "subscribed"
        marker = indicator_shared(open_)
        await s.ledger.write([marker])
        got = await _until(ws, marker.id)
        assert [e["id"] for e in got] == [old[0].id, marker.id]
    with pytest.raises(InvalidStatus) as refused:
        async with client(s.ws_url, key, backfill="true", cursor=hello["cursor"]):
            pass
    assert refused.value.response.status_code == 400
    assert b"not both" in refused.value.response.body
