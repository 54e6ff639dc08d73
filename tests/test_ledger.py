"""The ledger on the memory bus: verdicts, repeated ids, catching up, listeners, and writes that fail."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from crisis.bus.base import Delivered, PublishError, PublishUnknown
from crisis.bus.memory import MemoryBus
from crisis.domain.book import Outcome
from crisis.ledger import Ledger
from tests.gateway.events import crisis_opened, indicator_shared


@contextlib.asynccontextmanager
async def running(ledger: Ledger) -> AsyncIterator[Ledger]:
    """The ledger's reader loop in the background, entered once it has caught up."""
    task = asyncio.create_task(ledger.run())
    try:
        async with asyncio.timeout(5):
            await ledger.caught_up.wait()
        yield ledger
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def ledger_on(bus: MemoryBus, verdict_timeout: float = 5.0) -> Ledger:
    return Ledger(bus, verdict_timeout=verdict_timeout, poll=0.01)


def log_size(bus: MemoryBus) -> int:
    return sum(len(partition) for partition in bus._log)


async def test_a_write_answers_each_event_s_verdict_in_order() -> None:
    async with running(ledger_on(MemoryBus())) as ledger:
        crisis = crisis_opened()
        orphan = indicator_shared(crisis_opened())  # its crisis was never opened
        again = crisis_opened(crisis_id=crisis.subject)
        first, unknown, conflict = await ledger.write([crisis, orphan, again])
    assert first.accepted
    assert (unknown.accepted, unknown.code) == (False, "unknown_crisis")
    assert (conflict.accepted, conflict.code) == (False, "conflict")
    assert list(ledger.book.crises) == [crisis.subject]


async def test_a_retried_event_id_gets_its_first_verdict_without_a_second_record() -> None:
    bus = MemoryBus()
    async with running(ledger_on(bus)) as ledger:
        crisis = crisis_opened()
        [first] = await ledger.write([crisis])
        [retried] = await ledger.write([crisis])
    assert first.accepted and retried == first
    assert log_size(bus) == 1


async def test_a_retry_sent_while_the_first_write_is_in_flight_gets_the_same_verdict() -> None:
    # Both writes are in flight before either is folded: each hears the verdict of the event id, and
    # a batch's other events are answered as usual.
    bus = MemoryBus()
    async with running(ledger_on(bus)) as ledger:
        crisis = crisis_opened()
        other = crisis_opened()
        first, second = await asyncio.gather(ledger.write([crisis]), ledger.write([other, crisis]))
    assert first[0].accepted and second[1].accepted and second[0].accepted
    assert log_size(bus) == 3  # the retry was published before the first was folded: a duplicate record
    assert not ledger._waiters
    assert sorted(ledger.book.crises) == sorted([crisis.subject, other.subject])


async def test_an_event_id_repeated_in_the_log_is_folded_once_and_marked_duplicate() -> None:
    bus = MemoryBus(partitions=1)
    crisis = crisis_opened()
    await bus.publish([crisis, crisis])  # a writer that retried after an unknown outcome
    seen: list[tuple[Delivered, Outcome]] = []
    ledger = ledger_on(bus)
    ledger.listeners.append(seen.extend)
    async with running(ledger):
        pass
    assert [(d.offset, o.accepted, o.duplicate) for d, o in seen] == [(0, True, False), (1, True, True)]
    assert ledger.duplicates == {(0, 1)}
    assert ledger.book.crises[crisis.subject].state.version == 1


async def test_caught_up_is_set_only_once_the_whole_log_is_folded() -> None:
    bus = MemoryBus()
    crises = [crisis_opened() for _ in range(20)]
    await bus.publish(crises)
    ledger = ledger_on(bus)
    folded_when_caught_up: list[int] = []

    async def watch() -> None:
        await ledger.caught_up.wait()
        folded_when_caught_up.append(len(ledger.book.crises))

    watcher = asyncio.create_task(watch())
    async with running(ledger):
        await watcher
    assert folded_when_caught_up == [20]
    assert sum(ledger.positions.values()) == 20


async def test_an_empty_log_is_caught_up_at_once() -> None:
    async with running(ledger_on(MemoryBus())) as ledger:
        assert ledger.caught_up.is_set() and not ledger.book.crises


async def test_listeners_get_every_event_in_log_order_with_its_verdict() -> None:
    crisis = crisis_opened()
    shared = [indicator_shared(crisis, seq=n) for n in range(3)]
    orphan = indicator_shared(crisis_opened())
    seen: list[tuple[Delivered, Outcome]] = []
    ledger = ledger_on(MemoryBus(partitions=1))
    ledger.listeners.append(seen.extend)
    async with running(ledger):
        await ledger.write([crisis, *shared])
        await ledger.write([orphan])
    assert [d.envelope.id for d, _ in seen] == [e.id for e in (crisis, *shared, orphan)]
    assert [d.offset for d, _ in seen] == [0, 1, 2, 3, 4]
    assert [o.accepted for _, o in seen] == [True, True, True, True, False]


async def test_a_verdict_not_known_in_time_is_an_unknown_outcome_and_a_retry_is_safe() -> None:
    bus = MemoryBus()
    crisis = crisis_opened()
    silent = ledger_on(bus, verdict_timeout=0.05)  # its reader is not running: no verdict can come
    with pytest.raises(PublishUnknown) as unknown:
        await silent.write([crisis])
    assert unknown.value.event_ids == (crisis.id,)
    assert not silent._waiters
    assert log_size(bus) == 1  # the write landed nonetheless
    async with running(ledger_on(bus)) as ledger:
        [retried] = await ledger.write([crisis])
    assert retried.accepted and not retried.duplicate
    assert log_size(bus) == 1  # the retry found the verdict in the log and wrote nothing


async def test_a_refused_publish_is_a_publish_error_and_leaves_nothing_behind() -> None:
    bus = MemoryBus()
    async with running(ledger_on(bus)) as ledger:
        bus.available = False
        crisis = crisis_opened()
        with pytest.raises(PublishError) as refused:
            await ledger.write([crisis])
        assert not isinstance(refused.value, PublishUnknown)
        assert refused.value.event_ids == (crisis.id,)
        assert not ledger._waiters and log_size(bus) == 0
        bus.available = True
        [outcome] = await ledger.write([crisis])
    assert outcome.accepted
