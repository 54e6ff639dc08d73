"""Retention after closure: every tick, each closed crisis whose retention has ended gets its
`crisis.retention_expired` event, and with it every key of the crisis is destroyed.

Every API process runs one, like the deadline clock (crisis.clock.ticker): the event's id is derived from
the crisis, so whichever process writes first wins and the others' writes are kept once by the fold. The
keys go when the event is folded (crisis.crypto.sealed.SealedBus.on_folded), in every process.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from crisis.bus.base import PublishError
from crisis.clock.ticking import tick_forever
from crisis.domain import retention
from crisis.domain.envelope import Envelope, utcnow
from crisis.ledger import Ledger

log = structlog.get_logger(__name__)


class Retention:
    def __init__(self, ledger: Ledger, *, tick_s: float = 5.0, now: Callable[[], datetime] = utcnow) -> None:
        self.ledger = ledger
        self.tick_s = tick_s
        self.now = now
        self.expired = 0

    def due_now(self) -> list[Envelope]:
        """The expiry events to write now (crises are few beside their indicators: all are looked at)."""
        now = self.now()
        due = []
        for record in self.ledger.book.crises.values():
            at = retention.expires_at(record.state)
            if at is not None and at <= now:
                due.append(retention.expiry_event(record.state, now))
        return due

    async def tick(self) -> None:
        envelopes = self.due_now()
        if not envelopes:
            return
        try:
            outcomes = await self.ledger.write(envelopes)
        except PublishError as exc:  # PublishUnknown included: the same ids next tick
            log.warning("retention_write_failed", crises=len(envelopes), error=str(exc))
            return
        for env, outcome in zip(envelopes, outcomes, strict=True):
            if outcome.accepted and not outcome.duplicate:
                self.expired += 1
                log.info("retention_expired", crisis=env.subject)

    async def run(self) -> None:
        """Tick forever; returns only when cancelled."""
        await tick_forever(self.tick, self.tick_s, "retention_tick_failed")
