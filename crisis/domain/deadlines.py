"""Deadlines: what each expected provider owes, by when, and what is overdue at a given time. Pure.

A provider on a crisis's roster owes, for every indicator it may read that is not retracted, a receipt
(any answer) within `receipt_deadline_s` of the share and an outcome other than `received` within
`action_deadline_s`. A closed crisis owes nothing more. A deadline that passes unanswered becomes one
`clock.overdue` event, whose id is derived from what it is about, so every API process that notices it
writes the same event and the fold keeps the first; the provider's late answer withdraws it (the overdue
record is marked withdrawn; no further event is needed, the answer itself is in the log).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from crisis.domain.crisis import CrisisState
from crisis.domain.enums import ActionOutcome, Deadline, EventType, Role, Status, Tlp
from crisis.domain.envelope import Envelope
from crisis.domain.events import ClockOverdue
from crisis.domain.principal import Principal

if TYPE_CHECKING:
    from crisis.domain.book import CrisisRecord, IndicatorRecord

# The CloudEvents `source` of the clock's events: no organisation or key writes them.
CLOCK_SOURCE: Final = "/clock"
_NAMESPACE: Final = uuid.UUID("6f1c2a4e-9d3b-5e7a-8c61-2b4f0d9e7a13")


@dataclass
class Answer:
    """When one provider first answered one indicator: any answer, and its first outcome."""

    received_at: datetime | None = None
    actioned_at: datetime | None = None

    def at(self, deadline: Deadline) -> datetime | None:
        return self.received_at if deadline is Deadline.RECEIPT else self.actioned_at

    def record(self, outcome: ActionOutcome, at: datetime) -> None:
        self.received_at = at if self.received_at is None else min(self.received_at, at)
        if not outcome.is_receipt:
            self.actioned_at = at if self.actioned_at is None else min(self.actioned_at, at)


@dataclass
class Overdue:
    """A missed deadline as the fold accepted it; `withdrawn_at` is the late answer's time."""

    event_id: str
    due_at: datetime
    withdrawn_at: datetime | None = None


@dataclass(frozen=True)
class Due:
    """One deadline one provider has let pass for one indicator."""

    crisis_id: str
    indicator_id: str
    provider_org: str
    deadline: Deadline
    due_at: datetime


def seconds(state: CrisisState, deadline: Deadline) -> int:
    return state.receipt_deadline_s if deadline is Deadline.RECEIPT else state.action_deadline_s


def due_at(state: CrisisState, shared_at: datetime, deadline: Deadline) -> datetime:
    return shared_at + timedelta(seconds=seconds(state, deadline))


def owes(record: CrisisRecord, indicator: IndicatorRecord, provider: str) -> bool:
    """Whether `provider` is expected to answer this indicator at all."""
    if record.state.status is Status.CLOSED or indicator.retracted or provider not in record.state.roster:
        return False
    return indicator.readable_by(Principal(org=provider, role=Role.PROVIDER, key_id=""), record.state.mode)


def pending(record: CrisisRecord, indicator_id: str, provider: str, deadline: Deadline) -> datetime | None:
    """The due time of a deadline `provider` still owes and has not answered; None when there is none."""
    indicator = record.indicators.get(indicator_id)
    if indicator is None or not owes(record, indicator, provider):
        return None
    answer = record.answers.get((indicator_id, provider))
    if answer is not None and answer.at(deadline) is not None:
        return None
    return due_at(record.state, indicator.shared_at, deadline)


def to_publish(
    record: CrisisRecord, indicator_id: str, deadline: Deadline, now: datetime
) -> tuple[list[Due], datetime | None]:
    """For one indicator and deadline: what is overdue at `now` and not yet recorded, and the next due
    time still ahead (None when nothing remains to watch)."""
    found: list[Due] = []
    ahead: datetime | None = None
    for provider in record.state.roster:
        due = pending(record, indicator_id, provider, deadline)
        if due is None:
            continue
        if due > now:
            ahead = due if ahead is None else min(ahead, due)
        elif (indicator_id, provider, deadline) not in record.overdue:
            found.append(Due(record.state.id, indicator_id, provider, deadline, due))
    return found, ahead


def refusal(record: CrisisRecord, data: ClockOverdue, at: datetime) -> str | None:
    """Why the fold refuses an overdue event written at `at`, or None when it stands."""
    due = pending(record, data.indicator_id, data.provider_org, data.deadline)
    if due is None:
        return f"{data.provider_org} owes no open {data.deadline} for indicator {data.indicator_id}"
    if due != data.due_at or at < due:
        return f"the {data.deadline} deadline for indicator {data.indicator_id} is {due.isoformat()}"
    if (data.indicator_id, data.provider_org, data.deadline) in record.overdue:
        return f"the {data.deadline} of {data.provider_org} for {data.indicator_id} is overdue already"
    return None


def overdue_id(due: Due) -> str:
    """The same id in every process for the same missed deadline (the fold keeps the first it sees)."""
    name = "\x00".join(
        (due.crisis_id, due.indicator_id, due.provider_org, str(due.deadline), due.due_at.isoformat())
    )
    return str(uuid.uuid5(_NAMESPACE, name))


def overdue_event(record: CrisisRecord, due: Due, at: datetime) -> Envelope:
    """The `clock.overdue` event for `due`, with the audience of the indicator it is about."""
    indicator = record.indicators[due.indicator_id]
    data = ClockOverdue(
        indicator_id=due.indicator_id,
        provider_org=due.provider_org,
        deadline=due.deadline,
        due_at=due.due_at,
        deadline_s=seconds(record.state, due.deadline),
    )
    return Envelope(
        id=overdue_id(due),
        source=CLOCK_SOURCE,
        type=EventType.CLOCK_OVERDUE,
        time=at,
        subject=record.state.id,
        tlp=indicator.tlp,
        mode=record.state.mode,
        tlprecipients=indicator.follow_up_recipients,
        data=data.model_dump(mode="json"),
    )


def withdraw(record: CrisisRecord, indicator_id: str, provider: str, at: datetime) -> None:
    """A late answer withdraws the overdue deadlines it meets."""
    answer = record.answers.get((indicator_id, provider))
    if answer is None:
        return
    for deadline in Deadline:
        overdue = record.overdue.get((indicator_id, provider, deadline))
        if overdue is not None and overdue.withdrawn_at is None and answer.at(deadline) is not None:
            overdue.withdrawn_at = at


def open_overdue(record: CrisisRecord) -> dict[Deadline, int]:
    """Missed deadlines not withdrawn yet, per kind."""
    counts = dict.fromkeys(Deadline, 0)
    for (_, _, deadline), overdue in record.overdue.items():
        if overdue.withdrawn_at is None:
            counts[deadline] += 1
    return counts


def default_roster(
    tlp: Tlp, recipients: Iterable[str], declarer: str, providers: Iterable[str]
) -> tuple[str, ...]:
    """Every provider organisation in a crisis's audience (all of them unless it names recipients)."""
    if tlp.names_recipients:
        audience = {*recipients, declarer}
        return tuple(sorted(p for p in set(providers) if p in audience))
    return tuple(sorted(set(providers)))
