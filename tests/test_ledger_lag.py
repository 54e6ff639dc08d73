"""The ledger's lag behind the log, as the `crisis_ledger_lag_*` metrics of both processes report it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest_asyncio

from crisis.bus.memory import MemoryBus
from crisis.ledger import Ledger
from crisis.metrics import LedgerLag
from tests.gateway.events import crisis_opened, indicator_shared


@pytest_asyncio.fixture
async def folding() -> AsyncIterator[tuple[MemoryBus, Ledger]]:
    bus = MemoryBus()
    ledger = Ledger(bus, poll=0.01)
    task = asyncio.create_task(ledger.run())
    try:
        await ledger.caught_up.wait()
        yield bus, ledger
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until_current(ledger: Ledger) -> None:
    async with asyncio.timeout(5):
        while ledger.lag()[0]:
            await asyncio.sleep(0.01)


def gauges(ledger: Ledger) -> dict[str, float]:
    return {m.name: m.samples[0].value for m in LedgerLag(ledger).collect()}


async def test_lag_counts_what_is_in_the_log_but_not_folded(folding: tuple[MemoryBus, Ledger]) -> None:
    bus, ledger = folding
    assert ledger.lag() == (0, 0.0)
    crisis = crisis_opened()
    # No await in between that lets the reader run: the three events are in the log, not yet folded.
    await bus.publish([crisis, indicator_shared(crisis), indicator_shared(crisis)])
    events, seconds = ledger.lag()
    assert events == 3 and seconds >= 0
    assert gauges(ledger)["crisis_ledger_lag_events"] == 3
    await until_current(ledger)
    assert ledger.lag() == (0, 0.0)
    assert gauges(ledger) == {
        "crisis_ledger_lag_events": 0,
        "crisis_ledger_lag_seconds": 0,
        "crisis_ledger_caught_up": 1,
    }


async def test_a_fold_briefly_behind_after_a_quiet_hour_is_not_an_hour_behind(
    folding: tuple[MemoryBus, Ledger],
) -> None:
    bus, ledger = folding
    old = crisis_opened()
    hour_ago = old.model_copy(update={"time": old.time - timedelta(hours=1)})
    await bus.publish([hour_ago])
    await until_current(ledger)
    assert ledger.last_event_time == hour_ago.time
    await bus.publish([indicator_shared(old)])
    events, seconds = ledger.lag()
    # Counted from the last moment the fold was current (a poll ago), not from the old event's time.
    assert events == 1 and seconds < 600
