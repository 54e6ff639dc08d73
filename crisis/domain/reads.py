"""The read audit: who read what, as aggregated counts each process writes to the log (`audit.reads`).

No event per read or per frame: each API and gateway process counts reads per organisation, key, crisis
and kind, notes each stream subscription (filters, and the cursors it started from and ended at), and
writes one `audit.reads` event per period. The fold keeps daily totals per organisation and kind for the
transparency report; the events themselves hold the detail.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# Who writes the read audit: the processes themselves, never a key (like the clock).
READS_SOURCE: Final = "/crisis-bus/audit"
# Every read-audit event shares one key, and so one partition and one chain.
READS_SUBJECT: Final = "audit.reads"


class ReadKind(StrEnum):
    STREAM = "stream"  # a stream subscription (WebSocket or Server-Sent Events)
    INDICATORS = "indicators"  # an indicator list or page
    EXPORT = "export"  # STIX, MISP, TAXII
    REPORT = "report"  # a crisis report
    TRANSPARENCY = "transparency"


class ReadCount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org: str
    key_id: str
    crisis_id: str = Field(default="", description="Empty when the read spans crises.")
    kind: ReadKind
    count: int = Field(ge=1)


class Subscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org: str
    key_id: str
    filters: dict[str, Any] = Field(description="The subscription's filters (crises, types, kinds, mode).")
    from_cursor: str | None = Field(description="The cursor it resumed from; null for a fresh start.")
    to_cursor: str | None = Field(description="The last cursor it was sent; null if it received nothing.")
    opened_at: AwareDatetime
    closed_at: AwareDatetime | None = Field(description="Null while still open at the period's end.")


class AuditReads(BaseModel):
    """Data of `audit.reads`: one process's reads over one period."""

    model_config = ConfigDict(extra="forbid")

    process: str
    period_from: AwareDatetime
    period_to: AwareDatetime
    counts: list[ReadCount] = Field(default_factory=list)
    subscriptions: list[Subscription] = Field(default_factory=list)


class ReadLine(BaseModel):
    """One line of the transparency report's read audit."""

    org: str
    kind: ReadKind
    count: int


class ReadTotals:
    """Daily totals per organisation and kind: bounded by days x organisations x kinds, not by reads."""

    def __init__(self) -> None:
        self.days: Counter[tuple[date, str, ReadKind]] = Counter()

    def add(self, data: AuditReads) -> None:
        day = data.period_from.date()
        for c in data.counts:
            self.days[(day, c.org, c.kind)] += c.count
        for s in data.subscriptions:
            if s.opened_at >= data.period_from:  # counted once, in the period it opened
                self.days[(s.opened_at.date(), s.org, ReadKind.STREAM)] += 1

    def lines(self, start: datetime, end: datetime) -> list[ReadLine]:
        """Totals of the UTC days from `start`'s to the one before `end` (reads are kept by whole days)."""
        first, last = start.date(), (end - timedelta(microseconds=1)).date()
        totals: Counter[tuple[str, ReadKind]] = Counter()
        for (day, org, kind), count in self.days.items():
            if first <= day <= last:
                totals[(org, kind)] += count
        return [ReadLine(org=org, kind=kind, count=n) for (org, kind), n in sorted(totals.items())]
