"""The clock of one API process: every tick, asks the domain what is overdue and writes it through the ledger.

Every API process runs one. Each keeps a heap of (due time, crisis, indicator, deadline) fed by the fold,
so a tick looks only at deadlines that have come due, never at the whole book. Whichever process notices a
missed deadline first writes its `clock.overdue` event; the others write the same event id, which the fold
keeps once (and a process that has already folded it does not publish it again). A write that fails is
tried again on the next tick.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime

import structlog

from crisis.bus.base import Delivered, PublishError, PublishUnknown
from crisis.clock.ticking import tick_forever
from crisis.domain import deadlines
from crisis.domain.book import Book, CrisisRecord, IndicatorRecord, Outcome
from crisis.domain.enums import Deadline, EventType, Status
from crisis.domain.envelope import Envelope, utcnow
from crisis.ledger import Ledger

log = structlog.get_logger(__name__)

Entry = tuple[datetime, str, str, Deadline]


class Clock:
    def __init__(self, ledger: Ledger, *, tick_s: float = 1.0, now: Callable[[], datetime] = utcnow) -> None:
        self.ledger = ledger
        self.tick_s = tick_s
        self.now = now
        self.written = 0
        self._heap: list[Entry] = []

    @property
    def book(self) -> Book:
        return self.ledger.book

    def start(self) -> None:
        """Watch every deadline in the book, then every one the fold adds (no await in between)."""
        for record in self.book.crises.values():
            self._watch_crisis(record)
        self.ledger.listeners.append(self._folded)

    def stop(self) -> None:
        if self._folded in self.ledger.listeners:
            self.ledger.listeners.remove(self._folded)

    def _folded(self, batch: list[tuple[Delivered, Outcome]]) -> None:
        for item, outcome in batch:
            if not outcome.deliverable:
                continue
            env = item.envelope
            record = self.book.crises.get(env.subject)
            if record is None:
                continue
            if env.type is EventType.INDICATOR_SHARED:
                self._watch(record, str(env.data.get("indicator_id")))
            elif env.type is EventType.CRISIS_CLOCK_CHANGED:
                # New deadlines or providers: every indicator of the crisis is looked at again.
                self._watch_crisis(record)

    def _watch_crisis(self, record: CrisisRecord) -> None:
        if record.state.status is Status.CLOSED or not record.state.roster:
            # A closed crisis owes nothing more (a book at start-up is mostly closed crises); one without
            # expected providers owes nothing until a roster arrives, which looks at every indicator again.
            return
        for indicator in record.indicators.values():
            self._watch_indicator(record, indicator)

    def _watch(self, record: CrisisRecord, indicator_id: str) -> None:
        indicator = record.indicators.get(indicator_id) if record.state.roster else None
        if indicator is not None:
            self._watch_indicator(record, indicator)

    def _watch_indicator(self, record: CrisisRecord, indicator: IndicatorRecord) -> None:
        for deadline in Deadline:
            due = deadlines.due_at(record.state, indicator.shared_at, deadline)
            heapq.heappush(self._heap, (due, record.state.id, indicator.data.indicator_id, deadline))

    def due_now(self) -> list[Envelope]:
        """The overdue events to write now; deadlines not due yet go back on the heap."""
        now = self.now()
        found: dict[str, Envelope] = {}
        while self._heap and self._heap[0][0] <= now:
            _, crisis_id, indicator_id, deadline = heapq.heappop(self._heap)
            record = self.book.crises.get(crisis_id)
            if record is None:
                continue
            dues, ahead = deadlines.to_publish(record, indicator_id, deadline, now)
            if ahead is not None:
                heapq.heappush(self._heap, (ahead, crisis_id, indicator_id, deadline))
            for due in dues:
                env = deadlines.overdue_event(record, due, now)
                found[env.id] = env
        return list(found.values())

    async def tick(self) -> None:
        envelopes = self.due_now()
        if not envelopes:
            return
        try:
            outcomes = await self.ledger.write(envelopes)
        except (PublishError, PublishUnknown) as exc:
            log.warning("clock_write_failed", events=len(envelopes), error=str(exc))
            for env in envelopes:
                # Looked at again next tick: the same ids, so a write that did land is not doubled.
                data = env.data
                due = datetime.fromisoformat(str(data["due_at"]))
                heapq.heappush(
                    self._heap, (due, env.subject, str(data["indicator_id"]), Deadline(data["deadline"]))
                )
            return
        for env, outcome in zip(envelopes, outcomes, strict=True):
            if outcome.accepted and not outcome.duplicate:
                self.written += 1
                log.info(
                    "clock_overdue",
                    crisis=env.subject,
                    provider=env.data["provider_org"],
                    indicator=env.data["indicator_id"],
                    deadline=env.data["deadline"],
                )

    async def run(self) -> None:
        """Tick forever; returns only when cancelled."""
        self.start()
        try:
            await tick_forever(self.tick, self.tick_s, "clock_tick_failed")
        finally:
            self.stop()
