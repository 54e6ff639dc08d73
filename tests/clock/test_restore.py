"""An API process restarted on its local store knows which deadlines were missed and which late answers
withdrew them: `crisis_clock_overdue` reads as in a process that folded the whole log, and the clock
writes nothing again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from crisis.config import Settings
from crisis.domain.enums import Role
from crisis.keys import KeyStore
from tests.api.conftest import ApiProcess, auth
from tests.support.prometheus import families

pytestmark = pytest.mark.kafka


async def _gauge(http: httpx.AsyncClient, url: str, crisis_id: str) -> dict[str, float]:
    page = families((await http.get(f"{url}/metrics")).text)
    return {
        s.labels["deadline"]: s.value
        for s in page["crisis_clock_overdue"].samples
        if s.labels["crisis"] == crisis_id
    }


async def test_the_overdue_gauge_after_a_restart_on_the_store_matches_a_full_fold(
    settings: Settings, tmp_path: Path
) -> None:
    keys = KeyStore(settings.keys_file)
    hub = keys.add("hub", Role.COORDINATOR)[1]
    bka = keys.add("bka", Role.AUTHORITY)[1]
    late = keys.add("late", Role.PROVIDER)[1]
    keys.add("silent", Role.PROVIDER)
    state = str(tmp_path / "state")
    body = {
        "title": "Attack",
        "status": "activated",
        "level": 1,
        "criteria": ["viral_spread"],
        "receipt_deadline_s": 1,
    }
    async with httpx.AsyncClient(timeout=30) as http:
        first = ApiProcess(settings, state)
        try:
            first.wait_ready()
            crisis = (await http.post(f"{first.url}/v1/crises", json=body, headers=auth(hub))).json()
            assert crisis["roster"] == ["late", "silent"]
            cid = crisis["id"]
            share = {"indicators": [{"kind": "md5", "value": c * 32} for c in "ab"]}
            r = await http.post(f"{first.url}/v1/crises/{cid}/indicators", json=share, headers=auth(bka))
            ids = [item["indicator_id"] for item in r.json()["items"]]
            deadline = time.monotonic() + 15
            while (await _gauge(http, first.url, cid)).get("receipt") != 4:
                assert time.monotonic() < deadline, "the receipts were not marked overdue"
                await asyncio.sleep(0.2)
            # A late receipt withdraws one missed deadline.
            ack = {"indicator_id": ids[0], "outcome": "received"}
            r = await http.post(f"{first.url}/v1/crises/{cid}/actions", json=ack, headers=auth(late))
            assert r.status_code == 201, r.text
            before = await _gauge(http, first.url, cid)
            assert before == {"receipt": 3, "action": 0}
        finally:
            first.stop()

        restarted, refolded = ApiProcess(settings, state), ApiProcess(settings)
        try:
            restarted.wait_ready()
            refolded.wait_ready()
            await asyncio.sleep(2)  # two ticks of each clock: time to write anything it thinks is missing
            assert await _gauge(http, restarted.url, cid) == before
            assert await _gauge(http, refolded.url, cid) == before
        finally:
            restarted.stop()
            refolded.stop()
