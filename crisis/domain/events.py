"""The `data` of each event type. JSON Schemas in schemas/ are generated from these models."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crisis.domain.crisis import CrisisState, Transition
from crisis.domain.enums import ActionOutcome, EventType
from crisis.domain.indicators import Indicator


class CrisisChanged(BaseModel):
    """Data of every `crisis.*` event: the crisis after the change, and the change itself."""

    model_config = ConfigDict(extra="forbid")

    crisis: CrisisState
    transition: Transition
    expected_version: int = Field(ge=0, description="The version the writer saw; 0 when opening.")


class IndicatorShared(Indicator):
    """Data of `indicator.shared`: one normalised indicator and who shared it."""

    indicator_id: str
    shared_by: str


class IndicatorSighted(Indicator):
    """Data of `indicator.sighted`: the same kind and canonical value shared again, within the same
    audience, by `sighted_by`; `indicator_id` names the existing indicator (the one to acknowledge)."""

    indicator_id: str
    sighted_by: str


class IndicatorRetracted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    indicator_id: str
    retracted_by: str
    reason: str = Field(default="", max_length=2000)


class ActionReported(BaseModel):
    """A provider's receipt or outcome for one indicator: what drives the one-hour clock."""

    model_config = ConfigDict(extra="forbid")

    indicator_id: str
    outcome: ActionOutcome
    provider_org: str
    at: AwareDatetime
    note: str = Field(default="", max_length=1000)


EVENT_DATA: dict[EventType, type[BaseModel]] = {
    EventType.CRISIS_OPENED: CrisisChanged,
    EventType.CRISIS_ACTIVATED: CrisisChanged,
    EventType.CRISIS_LEVEL_CHANGED: CrisisChanged,
    EventType.CRISIS_CONCLUDED: CrisisChanged,
    EventType.CRISIS_CLOSED: CrisisChanged,
    EventType.INDICATOR_SHARED: IndicatorShared,
    EventType.INDICATOR_SIGHTED: IndicatorSighted,
    EventType.INDICATOR_RETRACTED: IndicatorRetracted,
    EventType.ACTION_REPORTED: ActionReported,
}
