"""The report's figures in exercise time: wall-clock seconds from the log times the speed factor."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

from crisis.domain.report import ProviderLine, Report
from crisis.exercise.deadlines import Expectation, Miss, missed, one_hour_rule


@dataclass(frozen=True)
class ProviderFigures:
    org: str
    indicators: int
    received: int
    actioned: int
    receipt_within_hour: int
    action_within_hour: int
    median_receipt_s: float | None
    median_action_s: float | None
    slowest_receipt_s: float | None
    slowest_action_s: float | None


@dataclass
class Debrief:
    """A report plus what an exercise adds: its speed, expectations, injects; works for a live crisis too."""

    report: Report
    speed: float = 1.0
    expectations: list[Expectation] | None = None
    scenario: str | None = None
    injects: list[tuple[float, str, datetime | None, str | None]] = field(default_factory=list)
    interrupted: bool = False
    origin: datetime | None = None  # when the exercise clock read zero; else the first event

    @property
    def is_exercise(self) -> bool:
        return str(self.report.crisis.mode) == "exercise"

    @property
    def start(self) -> datetime:
        """Time zero: the exercise's start, or the crisis's first event (its opening)."""
        if self.origin is not None:
            return self.origin
        times = [t.time for t in self.report.timeline]
        return min(times) if times else self.report.crisis.created_at

    def offset(self, at: datetime) -> float:
        """Exercise seconds since the start for a wall-clock time."""
        return (at - self.start).total_seconds() * self.speed

    @property
    def zero(self) -> str:
        return "the exercise started" if self.origin is not None else "the crisis opened"

    @property
    def misses(self) -> list[Miss]:
        expected = self.expectations if self.expectations is not None else one_hour_rule(self.report)
        return missed(self.report, expected, self.speed)

    @property
    def providers(self) -> list[ProviderFigures]:
        return [figures(p, self.speed, float(self.report.one_hour_s)) for p in self.report.providers]


def figures(p: ProviderLine, speed: float, hour: float) -> ProviderFigures:
    receipts = [i.receipt_s * speed for i in p.items if i.receipt_s is not None]
    actions = [i.action_s * speed for i in p.items if i.action_s is not None]
    return ProviderFigures(
        org=p.org,
        indicators=p.indicators,
        received=len(receipts),
        actioned=len(actions),
        receipt_within_hour=sum(1 for s in receipts if s <= hour),
        action_within_hour=sum(1 for s in actions if s <= hour),
        median_receipt_s=statistics.median(receipts) if receipts else None,
        median_action_s=statistics.median(actions) if actions else None,
        slowest_receipt_s=max(receipts, default=None),
        slowest_action_s=max(actions, default=None),
    )
