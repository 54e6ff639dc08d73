"""A broker frozen (SIGSTOP) or killed (SIGKILL) while writes are in flight.

No request may get a success for an event that is not in the log; after the broker is back, retries with
the same Idempotency-Key (hence the same event ids) leave exactly one copy visible to readers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

import httpx
import pytest

from crisis.broker import EmbeddedBroker
from crisis.bus.kafka import KafkaBus
from crisis.domain.enums import Role
from tests.faults.conftest import (
    AutoTopicBus,
    Call,
    api_on,
    fault_settings,
    fire,
    read_log,
    send,
    until_ready,
    visible_once,
)
from tests.support.mock_cluster import MockCluster

pytestmark = pytest.mark.kafka


class Faulty(Protocol):
    bootstrap: str

    def pause(self) -> None: ...
    def resume(self) -> None: ...


@asynccontextmanager
async def broker_of(kind: str) -> AsyncIterator[tuple[Faulty, type[KafkaBus], bool]]:
    """The broker, the bus class that suits it, and whether it runs the idempotent producer."""
    if kind == "tansu":
        async with EmbeddedBroker() as tansu:
            yield tansu, KafkaBus, False
    else:
        async with MockCluster() as mock:
            yield mock, AutoTopicBus, True


def calls_for(crisis_id: str, count: int) -> list[Call]:
    """Crisis openings and indicator batches, each with an Idempotency-Key of its own."""
    calls = []
    for i in range(count):
        if i % 2:
            items = [{"kind": "md5", "value": f"{i:030x}{n:02x}"} for n in range(3)]
            calls.append(Call(f"/v1/crises/{crisis_id}/indicators", {"indicators": items}, f"share-{i}"))
        else:
            calls.append(Call("/v1/crises", {"title": f"crisis {i}"}, f"open-{i}"))
    return calls


async def retry_until_success(http: httpx.AsyncClient, call: Call, attempts: int = 10) -> Call:
    for _ in range(attempts):
        await send(http, call)
        if call.status in (200, 201):
            return call
        await asyncio.sleep(0.5)
    raise AssertionError(f"{call.path} never succeeded: {call.status} {call.answer}")


@pytest.mark.parametrize("kind", ["tansu", "mock"])
async def test_broker_frozen_mid_flight(kind: str, tmp_path: Path) -> None:
    async with broker_of(kind) as (broker, bus_type, idempotence):
        settings = fault_settings(broker.bootstrap, tmp_path, idempotence=idempotence)
        async with api_on(settings, bus_type) as running:
            _, key = running.keys.add("hub", Role.COORDINATOR)
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=running.api_url, headers=headers, timeout=30) as http:
                opened = await http.post(
                    "/v1/crises",
                    json={"title": "Attack", "status": "activated", "level": 1, "criteria": ["viral_spread"]},
                )
                assert opened.status_code == 201, opened.text
                calls = calls_for(opened.json()["id"], 24)
                in_flight = asyncio.create_task(fire(http, calls, spacing=0.02))
                await asyncio.sleep(0.15)
                broker.pause()
                await asyncio.sleep(3.0)  # longer than publish_timeout_s: writes in flight time out
                broker.resume()
                done = await in_flight
                await until_ready(http)

                assert {c.status for c in done} <= {200, 201, 503}, [(c.status, c.answer) for c in done]
                failed = [c for c in done if c.status == 503]
                succeeded = [c for c in done if c.status != 503]
                assert failed and succeeded, "the fault must strike while writes are in flight"
                for c in failed:
                    assert c.answer["code"] in ("outcome_unknown", "broker_unavailable") and c.event_ids()

                log = await read_log(bus_type, settings)
                missing = [i for c in succeeded for i in c.event_ids() if i not in log]
                assert not missing, f"successes for events not in the log: {missing}"

                promised = {c.key: c.event_ids() for c in failed}
                for c in failed:
                    await retry_until_success(http, c)
                    assert c.event_ids() == promised[c.key]  # the same events, not new ones
                    await send(http, c)  # and once more, after the success
                    assert c.status in (200, 201)
        ids = {i for c in done for i in c.event_ids()}
        assert set((await visible_once(bus_type, settings, ids)).values()) == {1}


async def test_broker_killed_mid_flight(tmp_path: Path) -> None:
    async with EmbeddedBroker() as broker:
        settings = fault_settings(broker.bootstrap, tmp_path, idempotence=False)
        async with api_on(settings) as running:
            _, key = running.keys.add("hub", Role.COORDINATOR)
            headers = {"Authorization": f"Bearer {key}"}
            calls = [Call("/v1/crises", {"title": f"crisis {i}"}, f"open-{i}") for i in range(24)]
            async with httpx.AsyncClient(base_url=running.api_url, headers=headers, timeout=30) as http:
                in_flight = asyncio.create_task(fire(http, calls, spacing=0.02))
                await asyncio.sleep(0.15)
                broker.kill()
                done = await in_flight
                metrics = (await http.get("/metrics")).text
            assert 'crisis_publish_failures_total{kind="unknown"}' in metrics
            assert {c.status for c in done} <= {201, 503}, [(c.status, c.answer) for c in done]
            failed = [c for c in done if c.status == 503]
            assert failed, "the kill must strike while writes are in flight"
            # A 201 is only sent once the API's own reader has read the event back from the broker.
            for c in done:
                if c.status == 201:
                    assert running.ledger.book.outcomes[c.answer["event_id"]].accepted
        # This broker keeps its log in memory: after a kill it comes back empty on the same port,
        # and the API comes back with it (a fresh process folds the new log).
        await broker.start()
        async with (
            api_on(settings) as running,
            httpx.AsyncClient(base_url=running.api_url, headers=headers, timeout=30) as http,
        ):
            for c in failed:
                promised = c.event_ids()
                await retry_until_success(http, c)
                assert c.event_ids() == promised
                await send(http, c)
                assert c.status == 201 and c.event_ids() == promised
        ids = {i for c in failed for i in c.event_ids()}
        assert set((await visible_once(KafkaBus, settings, ids)).values()) == {1}
        assert (await read_log(KafkaBus, settings)).keys() == ids
