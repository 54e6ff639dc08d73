"""A process restored from its local store links on the right chain head and still knows its disputes."""

from __future__ import annotations

from pathlib import Path

import pytest

from crisis.audit.log import records
from crisis.audit.verify import verify
from crisis.bus.adapters import open_bus
from crisis.config import Settings
from crisis.domain.disputes import DisputeStatus
from tests.gateway.events import action_reported, crisis_opened, indicator_shared
from tests.store.test_restore import folding

pytestmark = pytest.mark.kafka


async def test_a_restored_store_keeps_the_chain_head_and_the_disputes(
    settings: Settings, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    crisis = crisis_opened()
    indicator = indicator_shared(crisis)
    async with open_bus(settings) as bus:
        async with folding(bus, state) as (ledger, _):
            outcomes = await ledger.write([crisis, indicator, action_reported(indicator, outcome="disagree")])
            assert all(o.accepted for o in outcomes)
            head = ledger.book.chain_head(crisis.subject)

        async with folding(bus, state) as (ledger, seen):
            assert seen == []  # restored, not re-read
            record = ledger.book.crises[crisis.subject]
            assert record.chain_head == head
            [dispute] = record.disputes.values()
            assert dispute.status is DisputeStatus.OPEN and dispute.raised_by == ["vidshare"]
            [later] = await ledger.write([indicator_shared(crisis, seq=2)])
            assert later.accepted

        log = [r async for r in records(bus)]
    assert len(log) == 4 and verify(log).valid
