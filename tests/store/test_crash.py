"""An API process killed (SIGKILL) while folded writes still wait in memory for its store restarts to
exactly the state a process folding the whole log reaches: the store only ever holds whole batches with
the positions they reflect, and the log brings back the rest."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from crisis.config import Settings
from crisis.domain.book import Book
from crisis.domain.enums import Role
from crisis.keys import KeyStore
from crisis.store.sqlite import SqliteStorage
from tests.api.conftest import ApiProcess

pytestmark = pytest.mark.kafka


async def _state(http: httpx.AsyncClient, url: str, crisis_id: str) -> dict[str, Any]:
    crisis = (await http.get(f"{url}/v1/crises/{crisis_id}")).json()
    listed = (await http.get(f"{url}/v1/crises/{crisis_id}/indicators", params={"limit": 1000})).json()
    return {"crisis": crisis, "indicators": listed["items"], "total": listed["total"]}


def _share(values: range) -> dict[str, Any]:
    return {"indicators": [{"kind": "md5", "value": f"{n:032x}"} for n in values]}


async def test_a_process_killed_between_flushes_restarts_to_the_state_of_a_full_fold(
    settings: Settings, tmp_path: Path
) -> None:
    keys = KeyStore(settings.keys_file)
    _, hub = keys.add("hub", Role.COORDINATOR)
    state = tmp_path / "state"
    body = {"title": "Attack", "status": "activated", "level": 1, "criteria": ["viral_spread"]}
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {hub}"}, timeout=30) as http:
        first = ApiProcess(settings, str(state))
        try:
            first.wait_ready()
            crisis_id = (await http.post(f"{first.url}/v1/crises", json=body)).json()["id"]
            path = f"{first.url}/v1/crises/{crisis_id}/indicators"
            created = (await http.post(path, json=_share(range(40)))).json()["items"]
            await asyncio.sleep(2.5)  # the store's batch goes to disk within a second
            # Then, within the batch's second: changes to indicators on disk (sightings, a retraction),
            # new indicators, a transition; and the process dies before its store writes them.
            again = (await http.post(path, json=_share(range(30, 60)))).json()["counts"]
            assert again == {"created": 20, "sighting": 10, "rejected": 0}
            retracted = created[3]["indicator_id"]
            assert (await http.post(f"{path}/{retracted}/retract")).status_code == 200
            move = {"to": "activated", "level": 2, "expected_version": 1}
            url = f"{first.url}/v1/crises/{crisis_id}/transitions"
            assert (await http.post(url, json=move)).status_code == 200
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait()
        finally:
            first.stop()

        # The crash came between flushes: the store holds the first share, not what followed.
        store = SqliteStorage(state)
        on_disk = Book(store).crises[crisis_id]
        assert len(on_disk.indicators) == 40 and not on_disk.indicators[retracted].retracted
        store.close()

        restarted, refolded = ApiProcess(settings, str(state)), ApiProcess(settings)
        try:
            restarted.wait_ready()
            refolded.wait_ready()
            after = await _state(http, restarted.url, crisis_id)
            assert after == await _state(http, refolded.url, crisis_id)
            assert after["total"] == 60 and after["crisis"]["level"] == 2
            assert [i["indicator_id"] for i in after["indicators"] if i["retracted"]] == [retracted]
            # Each re-shared value was sighted once, not once per fold.
            assert sorted(len(i["sightings"]) for i in after["indicators"]) == [0] * 50 + [1] * 10
        finally:
            restarted.stop()
            refolded.stop()
