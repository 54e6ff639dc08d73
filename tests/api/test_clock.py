"""The clock through the API: rosters, deadlines recorded in the log, overdue and its late withdrawal."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from crisis.orgs import OrgRegistry
from tests.api.conftest import Actors
from tests.support.prometheus import families

pytestmark = pytest.mark.kafka

ACTIVATED = {"status": "activated", "level": 1, "criteria": ["viral_spread"]}


async def _declare(actors: Actors, **body: Any) -> dict[str, Any]:
    r = await actors.call("POST", "/v1/crises", "coordinator", json={"title": "Attack", **ACTIVATED, **body})
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_the_roster_defaults_to_registered_providers_in_the_audience(actors: Actors) -> None:
    registry = OrgRegistry(actors.stack.settings.orgs_file)
    for org in ("hub", "bka", "vidshare", "tubeco"):
        registry.add(org)
    actors.key("provider", "vidshare")
    actors.key("provider", "tubeco")
    actors.key("provider", "ghost")  # a key, but its organisation is not registered
    actors.key("authority", "bka")
    assert (await _declare(actors))["roster"] == ["tubeco", "vidshare"]
    red = await _declare(actors, tlp="red", tlprecipients=["vidshare"])
    assert red["roster"] == ["vidshare"]
    named = await _declare(actors, roster=["tubeco"])
    assert named["roster"] == ["tubeco"]
    unknown = await actors.call(
        "POST", "/v1/crises", "coordinator", json={"title": "A", **ACTIVATED, "roster": ["nobody"]}
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [{"field": "roster.0", "message": "nobody is not registered"}]


async def test_a_coordinator_changes_roster_and_deadlines_and_the_log_records_it(actors: Actors) -> None:
    crisis = await _declare(actors, roster=[])
    assert (crisis["roster"], crisis["receipt_deadline_s"], crisis["action_deadline_s"]) == ([], 3600, 3600)
    path = f"/v1/crises/{crisis['id']}/clock"
    change = {"expected_version": 1, "roster": ["vidshare"], "receipt_deadline_s": 600, "reason": "TCO"}
    refused = await actors.call("POST", path, "authority", json=change)
    assert refused.status_code == 403
    r = await actors.call("POST", path, "coordinator", json=change)
    assert r.status_code == 200, r.text
    after = r.json()
    assert (after["roster"], after["receipt_deadline_s"], after["action_deadline_s"]) == (
        ["vidshare"],
        600,
        3600,
    )
    assert after["version"] == 2
    stale = await actors.call("POST", path, "coordinator", json={**change, "action_deadline_s": 7200})
    assert stale.status_code == 409 and stale.json()["code"] == "stale_version"
    empty = await actors.call("POST", path, "coordinator", json={"expected_version": 2})
    assert empty.status_code == 422
    report = (await actors.call("GET", f"/v1/crises/{crisis['id']}/report", "coordinator")).json()
    entry = report["timeline"][-1]
    assert entry["type"] == "crisis.clock_changed" and entry["org"] == "hub"
    assert (
        entry["summary"]
        == "clock: receipt within 10m00s, action within 60m00s; roster: vidshare; reason: TCO"
    )
    assert (report["receipt_deadline_s"], report["roster"]) == (600, ["vidshare"])


async def _gauge(actors: Actors, crisis_id: str) -> dict[str, float]:
    page = families((await actors.http.get("/metrics")).text)
    return {
        s.labels["deadline"]: s.value
        for s in page["crisis_clock_overdue"].samples
        if s.labels["crisis"] == crisis_id
    }


async def test_overdue_shows_in_metrics_and_a_late_answer_withdraws_it(actors: Actors) -> None:
    crisis = await _declare(actors, roster=["vidshare"], receipt_deadline_s=1)
    indicator = await actors.shared_id(crisis["id"], {"kind": "md5", "value": "e" * 32})
    assert await _gauge(actors, crisis["id"]) == {"receipt": 0, "action": 0}
    deadline = time.monotonic() + 10
    while (await _gauge(actors, crisis["id"]))["receipt"] != 1:
        assert time.monotonic() < deadline, "no overdue receipt"
        await asyncio.sleep(0.2)
    ack = {"indicator_id": indicator, "outcome": "received"}
    r = await actors.call("POST", f"/v1/crises/{crisis['id']}/actions", "provider", json=ack)
    assert r.status_code == 201, r.text
    assert await _gauge(actors, crisis["id"]) == {"receipt": 0, "action": 0}
    report = (await actors.call("GET", f"/v1/crises/{crisis['id']}/report", "coordinator")).json()
    [line] = report["providers"]
    # Withdrawn, not forgiven: the receipt still counts as missed in the debrief.
    assert (line["receipts_due"], line["receipts_missed"], line["received"]) == (1, 1, 1)
