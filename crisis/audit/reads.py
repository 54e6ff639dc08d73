"""This process's read audit: counts and subscriptions since the last `audit.reads`, and the task writing it.

Counting is a dictionary increment on the request path; nothing is written per read or per frame. Every
period (CRISIS_AUDIT_READS_INTERVAL_S) and when the process stops, what was counted is written as one
`audit.reads` event through the ledger; a write that fails keeps the counts for the next period.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from crisis.bus.base import PublishError
from crisis.domain.enums import EventType, Mode, Tlp
from crisis.domain.envelope import Envelope, utcnow
from crisis.domain.reads import (
    READS_SOURCE,
    READS_SUBJECT,
    AuditReads,
    ReadCount,
    ReadKind,
    Subscription,
)
from crisis.ledger import Ledger

log = structlog.get_logger(__name__)

# API routes (by their path template) whose successful GET is a read worth recording.
API_READS: dict[str, ReadKind] = {
    "/v1/crises/{crisis_id}/indicators": ReadKind.INDICATORS,
    "/v1/crises/{crisis_id}/stix": ReadKind.EXPORT,
    "/v1/crises/{crisis_id}/misp": ReadKind.EXPORT,
    "/v1/crises/{crisis_id}/report": ReadKind.REPORT,
    "/v1/crises/{crisis_id}/report/lines": ReadKind.REPORT,
    "/v1/transparency": ReadKind.TRANSPARENCY,
}
TAXII_READS = ("/objects/", "/manifest/")


def api_read(template: str) -> ReadKind | None:
    """The kind of read a route is, from its path template; None for a route that is not one."""
    if template.startswith("/taxii2/") and template.endswith(TAXII_READS):
        return ReadKind.EXPORT
    return API_READS.get(template)


@dataclass
class _Open:
    org: str
    key_id: str
    filters: dict[str, Any]
    from_cursor: str | None
    cursor: Callable[[], str]
    opened_at: datetime


class ReadAudit:
    def __init__(self, now: Callable[[], datetime] = utcnow) -> None:
        self.process = uuid.uuid4().hex[:12]
        self._now = now
        self._since = now()
        self._counts: Counter[tuple[str, str, str, ReadKind]] = Counter()
        self._open: dict[int, _Open] = {}
        self._closed: list[Subscription] = []

    def count(self, org: str, key_id: str, crisis_id: str, kind: ReadKind) -> None:
        self._counts[(org, key_id, crisis_id, kind)] += 1

    def subscribed(
        self,
        owner: object,
        org: str,
        key_id: str,
        filters: dict[str, Any],
        from_cursor: str | None,
        cursor: Callable[[], str],
    ) -> None:
        """A stream subscription starts (a new filter on the same connection is a new subscription)."""
        self.unsubscribed(owner)
        self._open[id(owner)] = _Open(org, key_id, filters, from_cursor, cursor, self._now())

    def unsubscribed(self, owner: object) -> None:
        found = self._open.pop(id(owner), None)
        if found is not None:
            self._closed.append(_subscription(found, self._now()))

    def pending(self) -> AuditReads | None:
        """What to write now; None when nothing was read since the last write."""
        if not (self._counts or self._open or self._closed):
            return None
        counts = [
            ReadCount(org=o, key_id=k, crisis_id=c, kind=kind, count=n)
            for (o, k, c, kind), n in self._counts.items()
        ]
        subscriptions = [*self._closed, *(_subscription(s, None) for s in self._open.values())]
        return AuditReads(
            process=self.process,
            period_from=self._since,
            period_to=self._now(),
            counts=counts,
            subscriptions=subscriptions,
        )

    def written(self, data: AuditReads) -> None:
        """`data` is in the log: forget what it holds (reads counted meanwhile stay)."""
        for c in data.counts:
            key = (c.org, c.key_id, c.crisis_id, c.kind)
            self._counts[key] -= c.count
            if self._counts[key] <= 0:
                del self._counts[key]
        self._closed = self._closed[len([s for s in data.subscriptions if s.closed_at is not None]) :]
        self._since = data.period_to


def _subscription(s: _Open, closed_at: datetime | None) -> Subscription:
    return Subscription(
        org=s.org,
        key_id=s.key_id,
        filters=s.filters,
        from_cursor=s.from_cursor,
        to_cursor=s.cursor() or None,
        opened_at=s.opened_at,
        closed_at=closed_at,
    )


def event(data: AuditReads) -> Envelope:
    # TLP:RED with no recipient: on no one's stream; the figures reach coordinators through the report.
    return Envelope(
        source=READS_SOURCE,
        type=EventType.AUDIT_READS,
        time=data.period_to,
        subject=READS_SUBJECT,
        tlp=Tlp.RED,
        mode=Mode.LIVE,
        data=data.model_dump(mode="json"),
    )


async def flush(ledger: Ledger, reads: ReadAudit) -> None:
    data = reads.pending()
    if data is None:
        return
    try:
        [outcome] = await ledger.write([event(data)])
    except PublishError as exc:
        log.warning("audit_reads_not_written", error=str(exc))
        return
    if outcome.accepted:
        reads.written(data)
    else:
        log.error("audit_reads_refused", code=outcome.code, message=outcome.message)


@asynccontextmanager
async def reads_running(ledger: Ledger, reads: ReadAudit, interval_s: float) -> AsyncIterator[ReadAudit]:
    """Writes the read audit every `interval_s`, and once more on the way out."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval_s)
            await flush(ledger, reads)

    task = asyncio.create_task(loop(), name="audit-reads")
    try:
        yield reads
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await flush(ledger, reads)
