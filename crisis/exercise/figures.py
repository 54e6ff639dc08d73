"""The report's figures in exercise time: wall-clock seconds from the log times the speed factor."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

from crisis.domain.report import ProviderLine, Report, provider_line
from crisis.exercise.deadlines import Expectation, Miss, missed, one_hour_rule
from crisis.exercise.sampling import Plan


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
    plans: list[Plan] = field(default_factory=list)  # what simulated providers drew

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
    def providers(self) -> list[ProviderLine]:
        """Each provider's figures in exercise time (wall-clock seconds times the speed factor)."""
        r = self.report
        return [
            provider_line(p.org, p.items, self.speed, now=r.generated_at, expected=p.expected, state=r.crisis)
            for p in r.providers
        ]


@dataclass(frozen=True)
class SimulationCheck:
    """A simulated provider's drawn delays beside the log's measurement of them (exercise seconds)."""

    org: str
    answers: int
    drawn_receipt_s: float | None
    measured_receipt_s: float | None
    drawn_action_s: float | None
    measured_action_s: float | None
    largest_gap_s: float | None


def simulation_check(d: Debrief) -> list[SimulationCheck]:
    """Per simulated provider: medians drawn and measured, and the largest gap on any one answer."""
    items = {(p.org, i.indicator_id): i for p in d.report.providers for i in p.items}
    out = []
    for org in sorted({plan.org for plan in d.plans}):
        receipts: list[tuple[float, float]] = []
        actions: list[tuple[float, float]] = []
        for plan in (p for p in d.plans if p.org == org and p.answered):
            item = items.get((org, plan.indicator_id))
            if item is not None and item.receipt_s is not None and plan.receipt_s is not None:
                receipts.append((plan.receipt_s, item.receipt_s * d.speed))
            if item is not None and item.action_s is not None and plan.action_s is not None:
                actions.append((plan.action_s, item.action_s * d.speed))
        gaps = [abs(m - drawn) for drawn, m in receipts + actions]
        out.append(
            SimulationCheck(
                org=org,
                answers=len(receipts) + len(actions),
                drawn_receipt_s=_median([drawn for drawn, _ in receipts]),
                measured_receipt_s=_median([m for _, m in receipts]),
                drawn_action_s=_median([drawn for drawn, _ in actions]),
                measured_action_s=_median([m for _, m in actions]),
                largest_gap_s=max(gaps, default=None),
            )
        )
    return out


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
