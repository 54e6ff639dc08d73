"""The audience properties of test_audience_property.py, on chosen cases, through the real broker, the
real API on a socket and the real gateway: each organisation's own WebSocket stream is what is checked."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from crisis.config import Settings
from crisis.domain.enums import Tlp
from crisis.orgs import OrgRegistry
from tests.api.test_audience_property import ACTIVATED, DECLARER, NAMED, ORGS, ROLES, Case, Model
from tests.conftest import Stack
from tests.gateway.conftest import client

pytestmark = pytest.mark.kafka

A, B = 0, 1
CASES: dict[str, tuple[Tlp, list[str], list[tuple[Any, ...]]]] = {
    "amber crisis: same value at three audiences, sightings, retraction, acks": (
        Tlp.AMBER,
        [],
        [
            ("share", "bka", A, Tlp.RED, ["p1"]),
            ("share", "p2", A, Tlp.AMBER, None),  # outside the RED audience: its own indicator
            ("share", "p3", A, Tlp.AMBER, None),  # a sighting of p2's
            ("share", "p1", A, Tlp.RED, ["bka"]),  # the same readers as bka's: a sighting of it
            ("share", "hub", B, Tlp.AMBER_STRICT, ["p3"]),
            ("act", "p2", 0),
            ("act", "p3", 0),
            ("act", "p3", 1),
            ("retract", "p1", 0),
            ("retract", "hub", 1),
            ("share", "p2", A, Tlp.AMBER, None),  # after the retraction: a new indicator
        ],
    ),
    "red crisis: recipients within it, the declarer inside": (
        Tlp.RED,
        ["bka", "p1"],
        [
            ("share", "p1", A, Tlp.RED, None),
            ("share", "p1", B, Tlp.RED, ["p2"]),  # p2 is outside the crisis: refused
            ("share", "p2", A, Tlp.RED, None),  # p2 may not read the crisis: 404
            ("share", "bka", A, Tlp.RED, ["p1"]),  # the same readers as p1's: a sighting of it
            ("share", "bka", B, Tlp.RED, ["p1"]),
            ("act", "p1", 0),
            ("act", "p2", 0),
            ("retract", "bka", 0),
        ],
    ),
}


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    """One partition: a sentinel written last is the last event every subscriber receives."""
    result: Settings = make_settings(kafka_partitions=1)
    registry = OrgRegistry(result.orgs_file)
    for org in ORGS:
        registry.add(org)
    return result


@pytest.mark.parametrize("name", list(CASES))
async def test_no_leak_and_no_lost_share_on_the_real_stream(full_stack: Stack, name: str) -> None:
    s = full_stack
    tlp, recipients, ops = CASES[name]
    keys = {org: s.add_key(org, role) for org, role in ROLES.items()}
    async with AsyncExitStack() as stack, httpx.AsyncClient(base_url=s.api_url, timeout=15) as http:
        streams = {org: await stack.enter_async_context(client(s.ws_url, keys[org])) for org in ORGS}
        await asyncio.sleep(0.3)  # subscribed
        hub = {"Authorization": f"Bearer {keys[DECLARER]}"}
        body = {"title": "Attack", "tlp": tlp, "tlprecipients": recipients, **ACTIVATED}
        r = await http.post("/v1/crises", json=body, headers=hub)
        assert r.status_code == 201, r.text
        case = Case(keys, http, Model(tlp, tuple(recipients if tlp in NAMED else [])), r.json()["id"])
        await case.run(ops)
        sentinel = await http.post(
            "/v1/crises", json={"title": "Sentinel", "status": "monitoring"}, headers=hub
        )
        assert sentinel.status_code == 201
        frames = {org: await until(streams[org], sentinel.json()["id"]) for org in ORGS}
        await case.check(lambda org: frames[org])
    assert len(case.model.audience) >= 2, "the case shares what it means to"


async def until(ws: Any, crisis_id: str) -> list[dict[str, Any]]:
    """Every event the stream delivers up to the sentinel crisis's opening."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(15):
        while True:
            message = json.loads(await ws.recv())
            if "specversion" not in message:
                continue
            if message["subject"] == crisis_id:
                return out
            out.append(message)
