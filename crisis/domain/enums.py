"""Vocabulary of the protocol: every closed set of values the bus speaks."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """Fixed at creation: exercise traffic is never mistaken for a live crisis."""

    LIVE = "live"
    EXERCISE = "exercise"


class Status(StrEnum):
    MONITORING = "monitoring"
    ACTIVATED = "activated"
    CONCLUDED = "concluded"
    CLOSED = "closed"


class Role(StrEnum):
    COORDINATOR = "coordinator"
    AUTHORITY = "authority"
    PROVIDER = "provider"
    OBSERVER = "observer"


class Tlp(StrEnum):
    """Traffic Light Protocol 2.0 labels, least to most restrictive."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @property
    def names_recipients(self) -> bool:
        """RED and AMBER+STRICT travel only to organisations named on the event."""
        return self in (Tlp.RED, Tlp.AMBER_STRICT)


class EventType(StrEnum):
    CRISIS_OPENED = "crisis.opened"
    CRISIS_ACTIVATED = "crisis.activated"
    CRISIS_LEVEL_CHANGED = "crisis.level_changed"
    CRISIS_CONCLUDED = "crisis.concluded"
    CRISIS_CLOSED = "crisis.closed"
    CRISIS_CLOCK_CHANGED = "crisis.clock_changed"
    INDICATOR_SHARED = "indicator.shared"
    INDICATOR_SIGHTED = "indicator.sighted"
    INDICATOR_RETRACTED = "indicator.retracted"
    ACTION_REPORTED = "action.reported"
    CLOCK_OVERDUE = "clock.overdue"
    DISPUTE_RESOLVED = "dispute.resolved"
    AUDIT_READS = "audit.reads"
    INDICATOR_ERASED = "indicator.erased"
    CRISIS_ERASED = "crisis.erased"
    CRISIS_RETENTION_EXPIRED = "crisis.retention_expired"

    @property
    def is_crisis_state(self) -> bool:
        """Events whose data carries the crisis as it now stands (an erasure record does not)."""
        return self in _CRISIS_STATE

    @property
    def is_erasure(self) -> bool:
        """Events after which some values of the log are unrecoverable (their keys are destroyed)."""
        return self in _ERASURES

    @property
    def is_clock(self) -> bool:
        """Events the clock writes about one provider: for coordinators and that provider only."""
        return self in _CLOCK


_ERASURES = frozenset(
    {EventType.INDICATOR_ERASED, EventType.CRISIS_ERASED, EventType.CRISIS_RETENTION_EXPIRED}
)
# Computed once: these are asked of every event folded (an enum's `.value` is a slow property).
_CRISIS_STATE = frozenset(t for t in EventType if t.startswith("crisis.") and t not in _ERASURES)
_CLOCK = frozenset(t for t in EventType if t.startswith("clock."))


class Deadline(StrEnum):
    """The two clocks every expected provider runs per indicator, both from the indicator's share."""

    RECEIPT = "receipt"
    ACTION = "action"


class ActivationCriterion(StrEnum):
    """The EU Crisis Protocol's thresholds for activation."""

    ONGOING_VIOLENT_EVENT = "ongoing_violent_event"
    PERPETRATOR_CONTENT = "perpetrator_content"
    DEPICTS_VIOLENCE = "depicts_violence"
    VIRAL_SPREAD = "viral_spread"


class ActionOutcome(StrEnum):
    RECEIVED = "received"
    REMOVED = "removed"
    BLOCKED = "blocked"
    NOT_FOUND = "not_found"
    DISAGREE = "disagree"
    NO_ACTION = "no_action"
    # The answer to a dispute resolved by retracting the indicator: the provider restored the content.
    REINSTATED = "reinstated"

    @property
    def is_receipt(self) -> bool:
        return self is ActionOutcome.RECEIVED


class IndicatorKind(StrEnum):
    URL = "url"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"
    PDQ = "pdq"
    TMK = "tmk"
    VPDQ = "vpdq"
    METADATA = "metadata"
