"""Expected provider responses and the deadlines missed, judged in exercise time from the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from crisis.domain.report import ProviderItem, Report

What = Literal["receipt", "action"]


@dataclass(frozen=True)
class Expectation:
    """`provider` should answer `indicator_id` within the deadlines (exercise seconds from the share)."""

    provider: str
    indicator_id: str
    receipt_within: float | None
    action_within: float | None


@dataclass(frozen=True)
class Miss:
    provider: str
    indicator_id: str
    what: What
    deadline_s: float
    actual_s: float | None  # exercise seconds; None: never answered


def one_hour_rule(report: Report) -> list[Expectation]:
    """Without a scenario (a live crisis's debrief): each provider acts on what it read within the hour."""
    return [
        Expectation(p.org, item.indicator_id, None, float(report.one_hour_s))
        for p in report.providers
        for item in p.items
    ]


def missed(report: Report, expectations: list[Expectation], speed: float = 1.0) -> list[Miss]:
    """Every expectation not met; report times are wall-clock and scaled by `speed` to exercise time."""
    items = {(p.org, i.indicator_id): i for p in report.providers for i in p.items}
    out: list[Miss] = []
    for e in expectations:
        item = items.get((e.provider, e.indicator_id))
        for what, deadline in (("receipt", e.receipt_within), ("action", e.action_within)):
            if deadline is None:
                continue
            actual = _seconds(item, what, speed)  # type: ignore[arg-type]
            if actual is None or actual > deadline:
                out.append(Miss(e.provider, e.indicator_id, what, deadline, actual))  # type: ignore[arg-type]
    return out


def _seconds(item: ProviderItem | None, what: What, speed: float) -> float | None:
    if item is None:
        return None
    value = item.receipt_s if what == "receipt" else item.action_s
    return None if value is None else value * speed
