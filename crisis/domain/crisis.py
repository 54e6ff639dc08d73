"""The crisis and its status machine: pure rules, no I/O.

monitoring -> activated (level 1..3, may change while activated) -> concluded -> closed;
monitoring may also go straight to closed. Every transition records who, when and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crisis.domain.enums import ActivationCriterion, EventType, Mode, Role, Status, Tlp
from crisis.domain.principal import Principal

Level = Annotated[int, Field(ge=1, le=3)]
OrgName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
ONE_HOUR_S = 3600
# A deadline in whole seconds: one second (for tests and drills) to one week.
DeadlineSeconds = Annotated[int, Field(ge=1, le=7 * 24 * 3600)]
MAX_ROSTER = 200
# How long after its closure a crisis's values stay readable: one second (tests, drills) to ten years.
RetentionSeconds = Annotated[int, Field(ge=1, le=10 * 366 * 24 * 3600)]
DEFAULT_RETENTION_S = 30 * 24 * 3600

# Which status may follow which; "activated -> activated" is a level change.
NEXT: dict[Status, frozenset[Status]] = {
    Status.MONITORING: frozenset({Status.ACTIVATED, Status.CLOSED}),
    Status.ACTIVATED: frozenset({Status.ACTIVATED, Status.CONCLUDED}),
    Status.CONCLUDED: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset(),
}


class TransitionError(Exception):
    """A transition the rules forbid; `code` maps to an HTTP status at the edge."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Transition(BaseModel):
    """The record of one status change: who, when, why, and the criteria met for activation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_status: Status | None
    to_status: Status
    level: Level | None = None
    reason: str = Field(default="", max_length=2000)
    criteria: tuple[ActivationCriterion, ...] = ()
    by_org: str
    by_key: str
    at: AwareDatetime


class CrisisState(BaseModel):
    """A crisis as of one version; `version` counts accepted crisis events, starting at 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str = Field(min_length=1, max_length=200)
    summary: str = Field(default="", max_length=4000)
    mode: Mode
    status: Status
    level: Level | None = None
    criteria: tuple[ActivationCriterion, ...] = ()
    jurisdictions: tuple[str, ...] = ()
    tlp: Tlp = Tlp.AMBER
    tlprecipients: tuple[str, ...] = ()
    created_by: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    version: int = Field(ge=1)
    roster: tuple[str, ...] = Field(
        default=(), description="The provider organisations expected to acknowledge and act on indicators."
    )
    receipt_deadline_s: DeadlineSeconds = Field(
        default=ONE_HOUR_S, description="Seconds from an indicator's share within which a receipt is due."
    )
    action_deadline_s: DeadlineSeconds = Field(
        default=ONE_HOUR_S, description="Seconds from an indicator's share within which an outcome is due."
    )
    retention_after_close_s: RetentionSeconds = Field(
        default=DEFAULT_RETENTION_S,
        description="Seconds after closure at which the crisis's keys are destroyed: its indicator values "
        "and free text become unrecoverable; counts, kinds, times and outcomes remain.",
    )
    erased: bool = Field(default=False, description="The crisis's free text (summary, reasons) is erased.")
    retention_expired_at: AwareDatetime | None = Field(
        default=None, description="When retention ended and every key of the crisis was destroyed."
    )


class CrisisCreate(BaseModel):
    """Open a crisis in `monitoring`, or declare it directly `activated` with a level and criteria."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    summary: str = Field(default="", max_length=4000)
    mode: Mode = Mode.LIVE
    status: Status = Status.MONITORING
    level: Level | None = None
    criteria: list[ActivationCriterion] = Field(default_factory=list, max_length=4, validate_default=True)
    jurisdictions: list[Annotated[str, Field(min_length=2, max_length=8)]] = Field(
        default_factory=list, max_length=50
    )
    tlp: Tlp = Tlp.AMBER
    tlprecipients: list[OrgName] = Field(default_factory=list, max_length=200)
    reason: str = Field(default="", max_length=2000)
    roster: list[OrgName] | None = Field(
        default=None,
        max_length=MAX_ROSTER,
        description="Provider organisations expected to act; omitted: every provider organisation in the "
        "crisis's audience.",
    )
    receipt_deadline_s: DeadlineSeconds = ONE_HOUR_S
    action_deadline_s: DeadlineSeconds = ONE_HOUR_S
    retention_after_close_s: RetentionSeconds | None = Field(
        default=None,
        description="Seconds after closure until its values are destroyed; omitted: the default.",
    )

    @field_validator("criteria")
    @classmethod
    def _criteria(
        cls, criteria: list[ActivationCriterion], info: ValidationInfo
    ) -> list[ActivationCriterion]:
        # A field validator, so that the error names the field; status is declared before criteria.
        if info.data.get("status") is Status.ACTIVATED:
            check_activation_criteria(criteria)
        return criteria

    @model_validator(mode="after")
    def _opening_status(self) -> CrisisCreate:
        if self.status not in (Status.MONITORING, Status.ACTIVATED):
            raise ValueError("a crisis opens as 'monitoring' or is declared 'activated'")
        _check_activation(self.status, self.level)
        return self


class TransitionRequest(BaseModel):
    """Move a crisis on; `expected_version` is the version the caller last saw."""

    model_config = ConfigDict(extra="forbid")

    to: Status
    expected_version: int = Field(ge=1)
    level: Level | None = None
    criteria: list[ActivationCriterion] = Field(default_factory=list, max_length=4)
    reason: str = Field(default="", max_length=2000)


class ClockRequest(BaseModel):
    """Change a crisis's roster or deadlines; omitted fields keep their value."""

    model_config = ConfigDict(extra="forbid")

    expected_version: int = Field(ge=1)
    roster: list[OrgName] | None = Field(default=None, max_length=MAX_ROSTER)
    receipt_deadline_s: DeadlineSeconds | None = None
    action_deadline_s: DeadlineSeconds | None = None
    retention_after_close_s: RetentionSeconds | None = None
    reason: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _changes_something(self) -> ClockRequest:
        fields = (self.roster, self.receipt_deadline_s, self.action_deadline_s, self.retention_after_close_s)
        if all(field is None for field in fields):
            raise ValueError(
                "name a roster, a receipt_deadline_s, an action_deadline_s or a retention_after_close_s "
                "to change"
            )
        return self


class ClockChange(BaseModel):
    """The record of one roster or deadline change: what the clock became, who changed it, when, why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roster: tuple[str, ...]
    receipt_deadline_s: DeadlineSeconds
    action_deadline_s: DeadlineSeconds
    # None in changes recorded before retention could be changed: the retention then stays as it was.
    retention_after_close_s: RetentionSeconds | None = None
    reason: str = Field(default="", max_length=2000)
    by_org: str
    by_key: str
    at: AwareDatetime


def _check_activation(status: Status, level: int | None) -> None:
    if status is Status.ACTIVATED:
        if level is None:
            raise ValueError("activation needs a level (1..3)")
    elif level is not None:
        raise ValueError("only an activated crisis has a level")


def check_activation_criteria(criteria: list[ActivationCriterion]) -> None:
    """An activation states which of the protocol's thresholds were met: at least one."""
    if not criteria:
        names = ", ".join(c.value for c in ActivationCriterion)
        raise ValueError(f"activation needs at least one criterion met (criteria: one or more of {names})")


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _allowed_from(status: Status) -> str:
    """What a crisis in `status` may become, for error messages."""
    allowed = [
        "activated at another level" if status is Status.ACTIVATED is after else str(after)
        for after in sorted(NEXT[status], key=list(Status).index)
    ]
    if not allowed:
        return f"{status} is final"
    return f"it may become {' or '.join(allowed)}"


def event_type_for(before: Status | None, after: Status) -> EventType:
    if after is Status.MONITORING:
        return EventType.CRISIS_OPENED
    if after is Status.ACTIVATED:
        return EventType.CRISIS_LEVEL_CHANGED if before is Status.ACTIVATED else EventType.CRISIS_ACTIVATED
    return EventType.CRISIS_CONCLUDED if after is Status.CONCLUDED else EventType.CRISIS_CLOSED


def may_open(principal: Principal, status: Status) -> bool:
    """Authorities and coordinators open monitoring; only coordinators declare."""
    if principal.role is Role.COORDINATOR:
        return True
    return principal.role is Role.AUTHORITY and status is Status.MONITORING


def may_transition(principal: Principal) -> bool:
    return principal.role is Role.COORDINATOR


def opened(
    crisis_id: str,
    req: CrisisCreate,
    principal: Principal,
    at: datetime,
    roster: tuple[str, ...] = (),
    retention_s: int = DEFAULT_RETENTION_S,
) -> tuple[CrisisState, Transition]:
    """The first state of a crisis and its transition record."""
    transition = Transition(
        from_status=None,
        to_status=req.status,
        level=req.level,
        reason=req.reason,
        criteria=tuple(req.criteria),
        by_org=principal.org,
        by_key=principal.key_id,
        at=at,
    )
    state = CrisisState(
        id=crisis_id,
        title=req.title,
        summary=req.summary,
        mode=req.mode,
        status=req.status,
        level=req.level,
        criteria=tuple(req.criteria),
        jurisdictions=tuple(req.jurisdictions),
        tlp=req.tlp,
        tlprecipients=tuple(req.tlprecipients),
        created_by=principal.org,
        created_at=at,
        updated_at=at,
        version=1,
        roster=roster,
        receipt_deadline_s=req.receipt_deadline_s,
        action_deadline_s=req.action_deadline_s,
        retention_after_close_s=req.retention_after_close_s or retention_s,
    )
    return state, transition


def advance(state: CrisisState, transition: Transition, expected_version: int) -> CrisisState:
    """Apply one transition or raise TransitionError; the same rule decides in the API and every reader."""
    if expected_version != state.version:
        raise TransitionError(
            "stale_version", f"crisis {state.id} is at version {state.version}, not {expected_version}"
        )
    if transition.from_status is not state.status:
        raise TransitionError(
            "stale_version", f"crisis {state.id} is {state.status}, not {transition.from_status}"
        )
    if transition.to_status not in NEXT[state.status]:
        raise TransitionError(
            "invalid_transition",
            f"{_article(str(state.status))} crisis cannot become {transition.to_status}; "
            f"{_allowed_from(state.status)}",
        )
    try:
        _check_activation(transition.to_status, transition.level)
    except ValueError as exc:
        raise TransitionError("invalid_transition", str(exc)) from exc
    if state.status is Status.ACTIVATED is transition.to_status and transition.level == state.level:
        raise TransitionError("invalid_transition", f"crisis {state.id} is already at level {state.level}")
    level = transition.level if transition.to_status is Status.ACTIVATED else state.level
    criteria = transition.criteria or state.criteria
    return state.model_copy(
        update={
            "status": transition.to_status,
            "level": level,
            "criteria": criteria,
            "updated_at": transition.at,
            "version": state.version + 1,
        }
    )


def plan(
    state: CrisisState, req: TransitionRequest, principal: Principal, at: datetime
) -> tuple[CrisisState, Transition]:
    """Check a requested transition against the current state; returns the next state and its record."""
    if req.to is Status.ACTIVATED and state.status is not Status.ACTIVATED:
        # Checked on the request, not in advance(): the log may hold activations from before this rule,
        # and every reader must still fold them as it did then.
        try:
            check_activation_criteria(req.criteria)
        except ValueError as exc:
            raise TransitionError("invalid_transition", str(exc)) from exc
    transition = Transition(
        from_status=state.status,
        to_status=req.to,
        level=req.level,
        reason=req.reason,
        criteria=tuple(req.criteria),
        by_org=principal.org,
        by_key=principal.key_id,
        at=at,
    )
    return advance(state, transition, req.expected_version), transition


def clock_planned(
    state: CrisisState, req: ClockRequest, principal: Principal, at: datetime, roster: tuple[str, ...]
) -> ClockChange:
    """The change a coordinator asked for, complete: every field as it will stand afterwards."""
    return ClockChange(
        roster=roster,
        receipt_deadline_s=req.receipt_deadline_s or state.receipt_deadline_s,
        action_deadline_s=req.action_deadline_s or state.action_deadline_s,
        retention_after_close_s=req.retention_after_close_s or state.retention_after_close_s,
        reason=req.reason,
        by_org=principal.org,
        by_key=principal.key_id,
        at=at,
    )


def clock_changed(state: CrisisState, change: ClockChange, expected_version: int) -> CrisisState:
    """Apply a roster or deadline change or raise TransitionError; every reader decides it the same way."""
    if expected_version != state.version:
        raise TransitionError(
            "stale_version", f"crisis {state.id} is at version {state.version}, not {expected_version}"
        )
    if state.status is Status.CLOSED:
        raise TransitionError("crisis_closed", f"crisis {state.id} is closed; its clock has stopped")
    return state.model_copy(
        update={
            "roster": change.roster,
            "receipt_deadline_s": change.receipt_deadline_s,
            "action_deadline_s": change.action_deadline_s,
            "retention_after_close_s": change.retention_after_close_s or state.retention_after_close_s,
            "updated_at": change.at,
            "version": state.version + 1,
        }
    )
