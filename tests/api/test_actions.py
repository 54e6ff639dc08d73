"""Provider actions after stand-down: a concluded crisis still records them, a closed one refuses."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Actors
from tests.conftest import every_adapter

pytestmark = every_adapter


async def _move(actors: Actors, cid: str, to: str, version: int) -> None:
    r = await actors.call(
        "POST",
        f"/v1/crises/{cid}/transitions",
        "coordinator",
        json={"to": to, "expected_version": version},
    )
    assert r.status_code == 200, r.text


async def _act(actors: Actors, cid: str, indicator: str, outcome: str) -> Any:
    body = {"indicator_id": indicator, "outcome": outcome, "note": "late upload taken down"}
    return await actors.call("POST", f"/v1/crises/{cid}/actions", "provider", json=body)


async def test_a_removal_is_recorded_on_a_concluded_crisis_but_not_a_closed_one(actors: Actors) -> None:
    crisis = await actors.crisis()
    cid = crisis["id"]
    indicator = await actors.shared_id(cid, {"kind": "md5", "value": "e" * 32})
    await _move(actors, cid, "concluded", 1)

    late = await _act(actors, cid, indicator, "removed")
    assert late.status_code == 201, late.text
    report = (await actors.call("GET", f"/v1/crises/{cid}/report", "coordinator")).json()
    [provider] = report["providers"]
    assert provider["items"][0]["first_action"] == "removed"

    await _move(actors, cid, "closed", 2)
    refused = await _act(actors, cid, indicator, "blocked")
    assert refused.status_code == 409 and refused.json()["code"] == "crisis_closed"
