"""This process's read audit: counts and subscriptions since the last `audit.reads`, and the task writing it.

Counting is a dictionary increment on the request path; nothing is written per read or per frame. Every
period (CRISIS_AUDIT_READS_INTERVAL_S) and when the process stops, what was counted is sent to a sink as one
`audit.reads` event: the ledger in a process that runs the API, the API over HTTP from a gateway-only process
(crisis.audit.forward). What was not written stays for the next period; one whose outcome is unknown is
sent again as it was, under the same event id, so a retry never counts a read twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

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

# Count lines, and subscriptions, in one `audit.reads` event: it stays well under Kafka's default 1 MB
# record and the API's body limit; a busier period goes out over the next ones.
LINES = 2000

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


class Sent(Enum):
    WRITTEN = "written"  # in the log
    UNKNOWN = "unknown"  # perhaps not: sent again unchanged
    REFUSED = "refused"  # not, and never as it was: the counts go out afresh next period


class ReadsSink(Protocol):
    async def send(self, data: AuditReads) -> Sent:
        """Put one period's read audit into the log."""
        ...


class ReadAudit:
    def __init__(self, now: Callable[[], datetime] = utcnow) -> None:
        self.process = uuid.uuid4().hex[:12]
        # A period sent whose outcome is unknown: sent again as it was before anything newer.
        self.held: AuditReads | None = None
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
        """What to write now; None when nothing was read since the last write. At most LINES count lines
        and LINES subscriptions: the rest waits for the next period."""
        if not (self._counts or self._open or self._closed):
            return None
        counts = [
            ReadCount(org=o, key_id=k, crisis_id=c, kind=kind, count=n)
            for (o, k, c, kind), n in itertools.islice(self._counts.items(), LINES)
        ]
        still_open = (_subscription(s, None) for s in self._open.values())
        subscriptions = list(itertools.islice(itertools.chain(self._closed, still_open), LINES))
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
        self.held = None


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


def event_id(data: AuditReads) -> str:
    """The event's id, from the process and its period: a period sent twice is one event."""
    period = f"{data.process}/{data.period_from.isoformat()}/{data.period_to.isoformat()}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{READS_SOURCE}/{period}"))


def event(data: AuditReads) -> Envelope:
    # TLP:RED with no recipient: on no one's stream; the figures reach coordinators through the report.
    return Envelope(
        id=event_id(data),
        source=READS_SOURCE,
        type=EventType.AUDIT_READS,
        time=data.period_to,
        subject=READS_SUBJECT,
        tlp=Tlp.RED,
        mode=Mode.LIVE,
        data=data.model_dump(mode="json"),
    )


class LedgerSink:
    """A process that runs the API writes its read audit through its own ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def send(self, data: AuditReads) -> Sent:
        try:
            [outcome] = await self.ledger.write([event(data)])
        except PublishError as exc:
            log.warning("audit_reads_not_written", error=str(exc))
            return Sent.UNKNOWN
        if outcome.accepted:
            return Sent.WRITTEN
        log.error("audit_reads_refused", code=outcome.code, message=outcome.message)
        return Sent.REFUSED


async def flush(sink: ReadsSink, reads: ReadAudit) -> None:
    data = reads.held or reads.pending()
    if data is None:
        return
    # Held until its fate is known: a send cut short (the process stopping mid-request, after the API may
    # have written it) is sent again unchanged, the same event id, which the fold takes once. A new
    # period over the same reads would be a second event and count them twice.
    reads.held = data
    sent = await sink.send(data)
    if sent is Sent.WRITTEN:
        reads.written(data)
    elif sent is Sent.REFUSED:
        reads.held = None


@asynccontextmanager
async def reads_running(sink: ReadsSink, reads: ReadAudit, interval_s: float) -> AsyncIterator[ReadAudit]:
    """Sends the read audit every `interval_s`, and once more on the way out."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval_s)
            await flush(sink, reads)

    task = asyncio.create_task(loop(), name="audit-reads")
    try:
        yield reads
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await flush(sink, reads)
