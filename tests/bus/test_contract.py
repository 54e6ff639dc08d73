"""The bus contract, one body run on every adapter: in memory and on a real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from crisis.bus.adapters import open_bus
from crisis.bus.base import Bus, Delivered
from crisis.domain.enums import EventType, Mode, Tlp
from crisis.domain.envelope import Envelope
from tests.conftest import every_adapter

pytestmark = every_adapter


@pytest_asyncio.fixture
async def bus(make_settings: Any) -> AsyncIterator[Bus]:
    """The adapter the test's settings name, opened by URL as the servers open it."""
    async with open_bus(make_settings()) as opened:
        yield opened


def event(crisis: str, n: int, **extra: object) -> Envelope:
    return Envelope(
        source="/orgs/hub/keys/k1",
        type=EventType.INDICATOR_SHARED,
        subject=crisis,
        tlp=Tlp.AMBER,
        mode=Mode.LIVE,
        data={"n": n, **extra},
    )


async def read_all(bus: Bus, count: int, start: dict[int, int] | None = None) -> list[Delivered]:
    got: list[Delivered] = []
    async with bus.reader(start) as reader:
        for _ in range(200):
            got += await reader.next_batch(0.05)
            if len(got) >= count and reader.caught_up():
                break
    return got


async def test_events_of_one_crisis_come_back_in_order_on_one_partition(bus: Bus) -> None:
    sent = [event(c, n) for n in range(20) for c in ("crisis-a", "crisis-b", "crisis-c")]
    positions = await bus.publish(sent)
    assert len(positions) == len(sent)
    got = await read_all(bus, len(sent))
    assert {d.envelope.id for d in got} == {e.id for e in sent}
    for crisis in ("crisis-a", "crisis-b", "crisis-c"):
        mine = [d for d in got if d.envelope.subject == crisis]
        assert [d.envelope.data["n"] for d in mine] == list(range(20))
        assert len({d.partition for d in mine}) == 1


async def test_envelope_survives_the_round_trip(bus: Bus) -> None:
    sent = Envelope(
        source="/orgs/hub/keys/k1",
        type=EventType.CRISIS_OPENED,
        subject="c1",
        tlp=Tlp.RED,
        mode=Mode.EXERCISE,
        tlprecipients=("org-a", "org-b"),
        data={"nested": {"x": [1, 2]}, "s": "é"},
    )
    await bus.publish([sent])
    [got] = await read_all(bus, 1)
    assert got.envelope == sent


async def test_reader_resumes_exactly_after_a_position(bus: Bus) -> None:
    first = [event("c1", n) for n in range(5)]
    [*_, last] = await bus.publish(first)
    later = [event("c1", n) for n in range(5, 8)]
    await bus.publish(later)
    got = await read_all(bus, 3, start={last.partition: last.offset + 1})
    assert [d.envelope.id for d in got] == [e.id for e in later]


async def test_caught_up_after_reading_everything(bus: Bus) -> None:
    await bus.publish([event("c1", n) for n in range(10)])  # one multi-record batch
    async with bus.reader() as reader:
        got: list[Delivered] = []
        for _ in range(100):
            got += await reader.next_batch(0.05)
            if reader.caught_up():
                break
        assert len(got) == 10
        assert reader.caught_up()


async def test_describe_names_the_cluster_and_partitions(bus: Bus) -> None:
    topology = await bus.describe()
    assert topology.partitions == 3
    assert topology.cluster_id
    assert all(offset == 0 for offset in topology.earliest.values())


async def test_a_reader_knows_how_far_behind_the_log_it_is(bus: Bus) -> None:
    """What the ledger's lag metric reads: records in the log past the reader's position."""
    await bus.publish([event("c1", n) for n in range(10)])
    async with bus.reader() as reader:
        got: list[Delivered] = []
        for _ in range(200):
            got += await reader.next_batch(0.05)
            if len(got) >= 10 and reader.caught_up():
                break
        assert reader.behind() == 0
        await bus.publish([event("c1", n) for n in range(10, 15)])
        async with asyncio.timeout(10):  # Kafka: until a fetch has seen the new high-watermark
            while reader.behind() < 5:
                await asyncio.sleep(0.01)
        assert reader.behind() == 5
        got = []
        async with asyncio.timeout(10):
            while len(got) < 5:
                got += await reader.next_batch(0.05)
        assert reader.behind() == 0


async def test_a_reader_decodes_at_most_its_limit_per_batch_and_knows_the_ends(bus: Bus) -> None:
    [*_, last] = await bus.publish([event("c1", n) for n in range(30)])  # one multi-record batch
    async with bus.reader() as reader:
        got: list[Delivered] = []
        for _ in range(200):
            batch = await reader.next_batch(0.05, 7)
            assert len(batch) <= 7
            got += batch
            if len(got) == 30:
                break
        assert [d.envelope.data["n"] for d in got] == list(range(30))
        # The end as the last fetch saw it (the high-watermark), not ListOffsets.
        assert reader.ends()[last.partition] == last.offset + 1
