"""A ledger with a local store, on a real broker: a restart folds only the log's tail, and a store of
another log is rebuilt from the beginning."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from crisis.bus.adapters import open_bus
from crisis.bus.base import Bus, Delivered
from crisis.config import Settings
from crisis.domain.book import Outcome
from crisis.domain.enums import Role
from crisis.keys import KeyStore
from crisis.ledger import Ledger
from crisis.store.sqlite import SqliteStorage
from tests.api.conftest import ApiProcess
from tests.domain.test_report import CID, opened, shared

pytestmark = pytest.mark.kafka


@contextlib.asynccontextmanager
async def folding(bus: Bus, directory: Path) -> AsyncIterator[tuple[Ledger, list[Delivered]]]:
    """A ledger over a store in `directory`, caught up, with every event it folded on the way."""
    store = SqliteStorage(directory)
    ledger = Ledger(bus, poll=0.01, store=store)
    seen: list[Delivered] = []

    def listen(batch: list[tuple[Delivered, Outcome]]) -> None:
        seen.extend(item for item, _ in batch)

    ledger.listeners.append(listen)
    task = asyncio.create_task(ledger.run())
    try:
        async with asyncio.timeout(20):
            await ledger.caught_up.wait()
        yield ledger, seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()


async def test_a_restart_folds_only_the_tail_and_another_log_rebuilds(
    settings: Settings, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    async with open_bus(settings) as bus:
        await bus.publish([opened(), *(shared(f"i{n}", f"{n:032x}", n) for n in range(5))])
        async with folding(bus, state) as (ledger, seen):
            assert len(seen) == 6 and len(ledger.book.crises[CID].indicators) == 5

        await bus.publish([shared("i5", f"{5:032x}", 5), shared("i6", f"{6:032x}", 6)])
        async with folding(bus, state) as (ledger, seen):
            assert [item.envelope.id for item in seen] == ["e-i5-5", "e-i6-6"]
            assert len(ledger.book.crises[CID].indicators) == 7
            # Caught up, the ledger has the store build its filter of values (put off until now).
            store = ledger.store
            assert isinstance(store, SqliteStorage)
            async with asyncio.timeout(10):
                while store.values.may_hold((CID, "md5", "f" * 32)):
                    await asyncio.sleep(0.01)
            # A value the first run stored is known to the filter from the scan alone (not shared since).
            assert store.values.may_hold((CID, "md5", f"{1:032x}"))
            # What the earlier run folded is still known: a retried write gets its first verdict.
            [verdict] = await ledger.write([shared("i0", f"{0:032x}", 0)])
            assert verdict.accepted and verdict.duplicate is False

        # The store says it reflects another log (as after a wiped journal): rebuilt from the start.
        store = SqliteStorage(state)
        store.checkpoint("another-log", store.positions(), set())
        store.close()
        async with folding(bus, state) as (ledger, seen):
            assert len(seen) == 8 and len(ledger.book.crises[CID].indicators) == 7


async def test_an_api_process_restarted_on_its_store_answers_as_before(
    settings: Settings, tmp_path: Path
) -> None:
    _, hub = KeyStore(settings.keys_file).add("hub", Role.COORDINATOR)
    state = str(tmp_path / "api-state")
    body = {"title": "Attack", "status": "activated", "level": 1, "criteria": ["viral_spread"]}
    headers = {"Authorization": f"Bearer {hub}", "Idempotency-Key": "declare-1"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        first = ApiProcess(settings, state)
        try:
            first.wait_ready()
            crisis = (await http.post(f"{first.url}/v1/crises", json=body)).json()
            share = {"indicators": [{"kind": "md5", "value": f"{n:032x}"} for n in range(30)]}
            path = f"{first.url}/v1/crises/{crisis['id']}/indicators"
            shared = await http.post(path, json=share, headers={"Idempotency-Key": "share-1"})
            assert shared.json()["counts"]["created"] == 30
        finally:
            first.stop()
        again = ApiProcess(settings, state)
        try:
            again.wait_ready()
            # The first request is known from the store: the same key and body get the same crisis.
            repeat = await http.post(f"{again.url}/v1/crises", json=body)
            assert repeat.status_code == 201 and repeat.json()["id"] == crisis["id"]
            listed = (await http.get(f"{again.url}/v1/crises/{crisis['id']}/indicators")).json()
            assert listed["total"] == 30
            # A stale version is still refused, a current one still accepted.
            move = {"to": "activated", "level": 2, "expected_version": 1}
            url = f"{again.url}/v1/crises/{crisis['id']}/transitions"
            assert (await http.post(url, json=move, headers={"Idempotency-Key": "t1"})).status_code == 200
            assert (await http.post(url, json=move, headers={"Idempotency-Key": "t2"})).status_code == 409
        finally:
            again.stop()
