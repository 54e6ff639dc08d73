"""The transparency report: TLP:CLEAR figures across the live crises opened in a period, from folded state.

Built from what the fold holds (crisis states, indicator records, provider answers, disputes, read
counts), never by re-reading the log: its cost grows with the state, not with history. It counts only what
its reader may read, so no one learns through a count that a crisis outside their audience exists.
Figures only: no indicator value, no free text, no person; organisations appear by their registered name.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from crisis.domain import audience
from crisis.domain.book import Book, CrisisRecord
from crisis.domain.disputes import DisputeStatus
from crisis.domain.enums import ActionOutcome, Mode, Role
from crisis.domain.principal import Principal
from crisis.domain.reads import ReadLine

REMOVALS = frozenset({ActionOutcome.REMOVED, ActionOutcome.BLOCKED})
NOT_ACTIVATED = "not activated"


class ProviderFigures(BaseModel):
    org: str
    referrals: int = Field(description="Indicators the provider answered (received, acted on or disputed).")
    removed: int = Field(description="Of those, removed or blocked.")
    removal_rate: float | None = Field(description="removed / referrals; null without referrals.")
    median_receipt_s: float | None
    median_action_s: float | None


class Transparency(BaseModel):
    tlp: Literal["clear"] = "clear"
    period_from: AwareDatetime
    period_to: AwareDatetime
    generated_at: AwareDatetime
    crises: int
    crises_by_level: dict[str, int] = Field(description="By current level; `not activated` for monitoring.")
    indicators: int
    indicators_by_kind: dict[str, int]
    providers: list[ProviderFigures]
    median_receipt_s: float | None = Field(description="From each share to each provider's first answer.")
    median_action_s: float | None = Field(description="From each share to each provider's first outcome.")
    disputes: dict[str, int] = Field(description="Disputes by status: open, confirmed, retracted.")
    erasures: int = Field(description="Indicators erased (events `indicator.erased`).")
    reads: list[ReadLine] = Field(
        description="Reads recorded in the period (`audit.reads`), by org and kind."
    )


def may_read_report(principal: Principal) -> bool:
    """The hub's figures: coordinators only."""
    return principal.role is Role.COORDINATOR


def build(book: Book, reader: Principal, start: datetime, end: datetime, now: datetime) -> Transparency:
    crises = list(_in_period(book, reader, start, end))
    levels: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    disputes: Counter[str] = Counter({s.value: 0 for s in DisputeStatus})
    per_provider: dict[str, _Provider] = {}
    erasures = 0
    for record in crises:
        state = record.state
        levels[str(state.level) if state.level is not None else NOT_ACTIVATED] += 1
        readable = set()
        for indicator in record.indicators.values():
            if indicator.readable_by(reader, state.mode):
                readable.add(indicator.data.indicator_id)
                kinds[str(indicator.data.kind)] += 1
        _answers(record, readable, per_provider)
        for dispute in record.disputes.values():
            if dispute.indicator_id in readable:
                disputes[dispute.status.value] += 1
        erasures += record.erasures
    providers = [p.figures(org) for org, p in sorted(per_provider.items())]
    return Transparency(
        period_from=start,
        period_to=end,
        generated_at=now,
        crises=len(crises),
        crises_by_level=dict(sorted(levels.items())),
        indicators=sum(kinds.values()),
        indicators_by_kind=dict(sorted(kinds.items())),
        providers=providers,
        median_receipt_s=_median(t for p in per_provider.values() for t in p.receipts),
        median_action_s=_median(t for p in per_provider.values() for t in p.actions),
        disputes=dict(disputes),
        erasures=erasures,
        reads=book.reads.lines(start, end),
    )


def _in_period(book: Book, reader: Principal, start: datetime, end: datetime) -> Iterator[CrisisRecord]:
    """Live crises opened in [start, end) that the reader may read."""
    for record in book.crises.values():
        state = record.state
        in_period = state.mode is Mode.LIVE and start <= state.created_at < end
        if in_period and audience.may_read_crisis(reader, state):
            yield record


class _Provider:
    def __init__(self) -> None:
        self.referred: set[str] = set()
        self.removed: set[str] = set()
        self.receipts: list[float] = []
        self.actions: list[float] = []

    def figures(self, org: str) -> ProviderFigures:
        referrals = len(self.referred)
        return ProviderFigures(
            org=org,
            referrals=referrals,
            removed=len(self.removed),
            removal_rate=round(len(self.removed) / referrals, 4) if referrals else None,
            median_receipt_s=_median(self.receipts),
            median_action_s=_median(self.actions),
        )


def _answers(record: CrisisRecord, readable: set[str], out: dict[str, _Provider]) -> None:
    for _env, action in record.actions:
        if action.indicator_id in readable:
            provider = out.setdefault(action.provider_org, _Provider())
            provider.referred.add(action.indicator_id)
            if action.outcome in REMOVALS:
                provider.removed.add(action.indicator_id)
    for (indicator_id, org), answer in record.answers.items():
        indicator = record.indicators.get(indicator_id) if indicator_id in readable else None
        if indicator is None:
            continue
        provider = out.setdefault(org, _Provider())
        if answer.received_at is not None:
            provider.receipts.append(_seconds(indicator.shared_at, answer.received_at))
        if answer.actioned_at is not None:
            provider.actions.append(_seconds(indicator.shared_at, answer.actioned_at))


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def _median(values: Iterable[float]) -> float | None:
    data = list(values)
    return round(statistics.median(data), 3) if data else None
