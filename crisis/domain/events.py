"""The `data` of each event type. JSON Schemas in schemas/ are generated from these models."""

from __future__ import annotations

from typing import Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crisis.domain.crisis import ClockChange, CrisisState, Transition
from crisis.domain.disputes import DisputeResolved
from crisis.domain.enums import ActionOutcome, Deadline, EventType, IndicatorKind
from crisis.domain.indicators import NO_CONTEXT, Indicator, is_plain_hash
from crisis.domain.reads import AuditReads

ERASED_FIELD = Field(
    default=False,
    description="The values this event carried are erased (their key was destroyed): the fields that held "
    "them read null or empty.",
)


class CrisisChanged(BaseModel):
    """Data of every `crisis.*` event: the crisis after the change, and the change itself."""

    model_config = ConfigDict(extra="forbid")

    crisis: CrisisState
    transition: Transition
    expected_version: int = Field(ge=0, description="The version the writer saw; 0 when opening.")
    erased: bool = ERASED_FIELD


class IndicatorShared(Indicator):
    """Data of `indicator.shared`: one normalised indicator and who shared it."""

    indicator_id: str
    shared_by: str
    erased: bool = ERASED_FIELD


_SHARED_FIELDS: Final = frozenset(IndicatorShared.model_fields)
_SHARED_UNERASED: Final = _SHARED_FIELDS - {"erased"}
_KINDS: Final = {str(kind): kind for kind in IndicatorKind}


def shared_data(data: Any) -> IndicatorShared:
    """`IndicatorShared.model_validate(data)`, built directly for a bare hash (most of a large batch):
    the fold validates every event it takes, and pydantic's walk through the nested context cost more
    than the rest of the fold. The same model, attribute for attribute and with the same fields set
    (test_fast_path.py); anything else is validated by pydantic."""
    if type(data) is dict:
        keys = data.keys()
        if (keys == _SHARED_FIELDS and data["erased"] is False) or keys == _SHARED_UNERASED:
            indicator_id, shared_by = data["indicator_id"], data["shared_by"]
            if type(indicator_id) is str and type(shared_by) is str and is_plain_hash(data):
                made = IndicatorShared.__new__(IndicatorShared)
                fields = {
                    "kind": _KINDS[data["kind"]],
                    "value": data["value"],
                    "canonical": data["canonical"],
                    "canonicalization": None,
                    "quality": None,
                    "blob": None,
                    "context": NO_CONTEXT,
                    "indicator_id": indicator_id,
                    "shared_by": shared_by,
                    "erased": False,
                }
                object.__setattr__(made, "__dict__", fields)
                object.__setattr__(made, "__pydantic_fields_set__", set(keys))
                object.__setattr__(made, "__pydantic_extra__", None)
                object.__setattr__(made, "__pydantic_private__", None)
                return made
    return IndicatorShared.model_validate(data)


class IndicatorSighted(Indicator):
    """Data of `indicator.sighted`: the same kind and canonical value shared again, within the same
    audience, by `sighted_by`; `indicator_id` names the existing indicator (the one to acknowledge)."""

    indicator_id: str
    sighted_by: str
    erased: bool = ERASED_FIELD


class IndicatorRetracted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    indicator_id: str
    retracted_by: str
    reason: str = Field(default="", max_length=2000)
    erased: bool = ERASED_FIELD


class ActionReported(BaseModel):
    """A provider's receipt or outcome for one indicator: what drives the one-hour clock."""

    model_config = ConfigDict(extra="forbid")

    indicator_id: str
    outcome: ActionOutcome
    provider_org: str
    at: AwareDatetime
    note: str = Field(default="", max_length=1000)
    erased: bool = ERASED_FIELD


class ClockChanged(BaseModel):
    """Data of `crisis.clock_changed`: the crisis after a coordinator changed its roster or deadlines."""

    model_config = ConfigDict(extra="forbid")

    crisis: CrisisState
    change: ClockChange
    expected_version: int = Field(ge=1, description="The version the coordinator saw.")
    erased: bool = ERASED_FIELD


class ClockOverdue(BaseModel):
    """Data of `clock.overdue`: an expected provider let a deadline pass for one indicator.

    Written once per missed deadline by the clock of whichever API process gets there first (its id is
    derived from these fields); withdrawn, without another event, by the provider's late answer.
    """

    model_config = ConfigDict(extra="forbid")

    indicator_id: str
    provider_org: str
    deadline: Deadline
    due_at: AwareDatetime
    deadline_s: int = Field(ge=1, description="The deadline in force, in seconds from the share.")


class IndicatorErased(BaseModel):
    """Data of `indicator.erased` and `crisis.erased`: a coordinator made values unrecoverable now.

    `indicator_id` names the indicator whose value, context, notes and reasons are erased; null on
    `crisis.erased`, which erases the crisis's free text (summary and reasons). The reason is kept in
    clear as the record of why: it must not repeat the erased value.
    """

    model_config = ConfigDict(extra="forbid")

    indicator_id: str | None = None
    erased_by: str
    reason: str = Field(min_length=1, max_length=2000)


class RetentionExpired(BaseModel):
    """Data of `crisis.retention_expired`: the crisis's retention after closure ended and every key of it
    was destroyed. Written once, by the clock of whichever API process gets there first."""

    model_config = ConfigDict(extra="forbid")

    closed_at: AwareDatetime
    retention_after_close_s: int = Field(ge=1)


EVENT_DATA: dict[EventType, type[BaseModel]] = {
    EventType.CRISIS_OPENED: CrisisChanged,
    EventType.CRISIS_ACTIVATED: CrisisChanged,
    EventType.CRISIS_LEVEL_CHANGED: CrisisChanged,
    EventType.CRISIS_CONCLUDED: CrisisChanged,
    EventType.CRISIS_CLOSED: CrisisChanged,
    EventType.INDICATOR_SHARED: IndicatorShared,
    EventType.INDICATOR_SIGHTED: IndicatorSighted,
    EventType.INDICATOR_RETRACTED: IndicatorRetracted,
    EventType.CRISIS_CLOCK_CHANGED: ClockChanged,
    EventType.ACTION_REPORTED: ActionReported,
    EventType.CLOCK_OVERDUE: ClockOverdue,
    EventType.DISPUTE_RESOLVED: DisputeResolved,
    EventType.AUDIT_READS: AuditReads,
    EventType.INDICATOR_ERASED: IndicatorErased,
    EventType.CRISIS_ERASED: IndicatorErased,
    EventType.CRISIS_RETENTION_EXPIRED: RetentionExpired,
}
