"""The fold of the event log into crisis state.

Every reader (each API process, each gateway) applies the same log in the same order with these rules,
so all of them reach the same verdict on every event: this is what makes "a stale version gets 409" hold
across processes. A writer publishes, then waits for its own reader to fold the event and learns the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from pydantic import ValidationError

from crisis.domain.crisis import CrisisState, TransitionError, advance
from crisis.domain.enums import Status, Tlp
from crisis.domain.envelope import Envelope
from crisis.domain.events import (
    EVENT_DATA,
    ActionReported,
    CrisisChanged,
    IndicatorRetracted,
    IndicatorShared,
)


@dataclass(frozen=True)
class Outcome:
    """The verdict on one event. A rejected event stays in the log but no reader acts on it or delivers it."""

    accepted: bool
    code: str = ""
    message: str = ""
    sighting_of: str | None = None
    duplicate: bool = False

    @property
    def deliverable(self) -> bool:
        return self.accepted and not self.duplicate


ACCEPTED = Outcome(accepted=True)


def rejected(code: str, message: str) -> Outcome:
    return Outcome(accepted=False, code=code, message=message)


@dataclass(frozen=True)
class Sighting:
    org: str
    at: datetime


@dataclass
class IndicatorRecord:
    data: IndicatorShared
    shared_at: datetime
    tlp: Tlp
    tlprecipients: tuple[str, ...]
    sightings: list[Sighting] = field(default_factory=list)
    retracted: bool = False


@dataclass
class CrisisRecord:
    state: CrisisState
    timeline: list[Envelope] = field(default_factory=list)
    indicators: dict[str, IndicatorRecord] = field(default_factory=dict)
    by_identity: dict[tuple[str, str], str] = field(default_factory=dict)
    actions: list[tuple[Envelope, ActionReported]] = field(default_factory=list)


class Book:
    """All crises as folded from the log so far."""

    def __init__(self) -> None:
        self.crises: dict[str, CrisisRecord] = {}
        self.outcomes: dict[str, Outcome] = {}

    def apply(self, env: Envelope) -> Outcome:
        """Fold one event; a repeated event id (a retried write) gets its first verdict, marked duplicate."""
        earlier = self.outcomes.get(env.id)
        if earlier is not None:
            return replace(earlier, duplicate=True)
        outcome = self._decide(env)
        self.outcomes[env.id] = outcome
        if outcome.accepted and env.subject in self.crises:
            self.crises[env.subject].timeline.append(env)
        return outcome

    def _decide(self, env: Envelope) -> Outcome:
        try:
            data = EVENT_DATA[env.type].model_validate(env.data)
        except ValidationError as exc:
            return rejected(
                "malformed", f"{env.type} data does not match its schema: {exc.error_count()} errors"
            )
        record = self.crises.get(env.subject)
        if isinstance(data, CrisisChanged):
            return self._crisis_changed(env, data, record)
        if record is None:
            return rejected("unknown_crisis", f"no crisis {env.subject}")
        if env.mode is not record.state.mode:
            return rejected("mode_mismatch", f"crisis {env.subject} is a {record.state.mode} crisis")
        if isinstance(data, IndicatorShared):
            return _indicator_shared(env, data, record)
        if isinstance(data, IndicatorRetracted):
            return _indicator_retracted(data, record)
        assert isinstance(data, ActionReported)
        return _action_reported(env, data, record)

    def _crisis_changed(self, env: Envelope, data: CrisisChanged, record: CrisisRecord | None) -> Outcome:
        if data.crisis.id != env.subject:
            return rejected("malformed", "the crisis in the data is not the event's subject")
        if record is None:
            if data.expected_version != 0 or data.crisis.version != 1:
                return rejected("unknown_crisis", f"no crisis {env.subject}")
            self.crises[env.subject] = CrisisRecord(state=data.crisis)
            return ACCEPTED
        if data.expected_version == 0:
            return rejected("conflict", f"crisis {env.subject} exists already")
        try:
            record.state = advance(record.state, data.transition, data.expected_version)
        except TransitionError as exc:
            return rejected(exc.code, exc.message)
        return ACCEPTED


def _indicator_shared(env: Envelope, data: IndicatorShared, record: CrisisRecord) -> Outcome:
    if record.state.status is Status.CLOSED:
        return rejected("crisis_closed", f"crisis {env.subject} is closed and takes no indicators")
    if data.indicator_id in record.indicators:
        return rejected("conflict", f"indicator id {data.indicator_id} is taken")
    existing = record.by_identity.get(_identity(data))
    if existing is not None:
        # A repeat of the same kind and canonical value is a sighting, not a second indicator.
        record.indicators[existing].sightings.append(Sighting(org=data.shared_by, at=env.time))
        return Outcome(accepted=True, sighting_of=existing)
    record.indicators[data.indicator_id] = IndicatorRecord(
        data=data, shared_at=env.time, tlp=env.tlp, tlprecipients=env.tlprecipients
    )
    record.by_identity[_identity(data)] = data.indicator_id
    return ACCEPTED


def _indicator_retracted(data: IndicatorRetracted, record: CrisisRecord) -> Outcome:
    indicator = record.indicators.get(data.indicator_id)
    if indicator is None:
        return rejected("unknown_indicator", f"no indicator {data.indicator_id} in crisis {record.state.id}")
    if indicator.retracted:
        return rejected("conflict", f"indicator {data.indicator_id} is already retracted")
    indicator.retracted = True
    record.by_identity.pop(_identity(indicator.data), None)
    return ACCEPTED


def _action_reported(env: Envelope, data: ActionReported, record: CrisisRecord) -> Outcome:
    if data.indicator_id not in record.indicators:
        return rejected("unknown_indicator", f"no indicator {data.indicator_id} in crisis {record.state.id}")
    if record.state.status is Status.CLOSED:
        return rejected("crisis_closed", f"crisis {record.state.id} is closed")
    record.actions.append((env, data))
    return ACCEPTED


def _identity(data: IndicatorShared) -> tuple[str, str]:
    return (str(data.kind), data.canonical)
