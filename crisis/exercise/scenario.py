"""The scenario script: participants, simulated providers and a timeline of timed injects."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crisis.domain.crisis import Level, OrgName, check_activation_criteria
from crisis.domain.enums import ActivationCriterion, IndicatorKind, Role, Status, Tlp
from crisis.domain.indicators import IndicatorIn
from crisis.exercise.durations import Duration
from crisis.exercise.sampling import Delay

Probability = Annotated[float, Field(ge=0, le=1)]
# Actions a simulated provider may take after its receipt (`received` is the receipt itself).
ActOutcome = Literal["removed", "blocked", "not_found", "disagree", "no_action"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _removed() -> dict[ActOutcome, float]:
    return {"removed": 1.0}


class Simulation(Strict):
    """How a simulated provider bot answers: delays are exercise time, before the speed factor."""

    receipt: Delay = Field(description="From the share to `received`.")
    action_delay: Delay = Field(description="From `received` to the action.")
    failure_rate: Probability = Field(0.0, description="Share of indicators it never answers at all.")
    action_failure_rate: Probability = Field(0.0, description="Share it receives but never acts on.")
    outcomes: dict[ActOutcome, Annotated[float, Field(ge=0)]] = Field(default_factory=_removed, min_length=1)
    kinds: list[IndicatorKind] | None = Field(None, description="Kinds it handles; default all.")

    @model_validator(mode="after")
    def _weights(self) -> Simulation:
        if sum(self.outcomes.values()) <= 0:
            raise ValueError("outcome weights must not all be zero")
        return self


class Participant(Strict):
    """An organisation in the exercise; the runner needs a key only for the ones it acts as."""

    org: OrgName
    role: Role
    key: str | None = Field(None, description="The API key itself (avoid in shared files).")
    key_name: str | None = Field(None, description="A name in the scenario's keys_file.")
    key_env: str | None = Field(None, description="An environment variable holding the key.")
    simulate: Simulation | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> Participant:
        given = [n for n in ("key", "key_name", "key_env") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of key, key_name, key_env, not {' and '.join(given)}")
        return self

    @property
    def has_key_source(self) -> bool:
        return any(v is not None for v in (self.key, self.key_name, self.key_env))


class Expect(Strict):
    """Responses the controller expects for the indicators of a share, with deadlines (exercise time)."""

    providers: list[OrgName] | Literal["all"] = "all"
    receipt_within: Duration | None = None
    action_within: Duration | None = None


class Open(Strict):
    """Open in monitoring, or declare activated with a level and the criteria met; always exercise mode."""

    title: str = Field(min_length=1, max_length=200)
    summary: str = Field("", max_length=4000)
    status: Literal[Status.MONITORING, Status.ACTIVATED] = Status.MONITORING
    level: Level | None = None
    criteria: list[ActivationCriterion] = Field(default_factory=list)
    jurisdictions: list[str] = Field(default_factory=list)
    tlp: Tlp = Tlp.AMBER
    tlprecipients: list[OrgName] = Field(default_factory=list)
    reason: str = ""
    by: OrgName | None = None

    @model_validator(mode="after")
    def _level(self) -> Open:
        if (self.status is Status.ACTIVATED) != (self.level is not None):
            raise ValueError("a declared (activated) crisis needs a level; a monitoring one has none")
        if self.status is Status.ACTIVATED:
            check_activation_criteria(self.criteria)
        return self


class Activate(Strict):
    level: Level
    criteria: list[ActivationCriterion] = Field(default_factory=list, validate_default=True)
    reason: str = ""
    by: OrgName | None = None

    @field_validator("criteria")
    @classmethod
    def _criteria(cls, criteria: list[ActivationCriterion]) -> list[ActivationCriterion]:
        # The domain's rule, checked when the scenario is loaded rather than when the step runs.
        check_activation_criteria(criteria)
        return criteria


class ChangeLevel(Strict):
    level: Level
    reason: str = ""
    by: OrgName | None = None


class Stand(Strict):
    """Conclude or close."""

    reason: str = ""
    by: OrgName | None = None


class Generate(Strict):
    """N reproducible made-up indicators of one kind (from the scenario's seed)."""

    kind: IndicatorKind
    count: int = Field(ge=1, le=10_000)

    @model_validator(mode="after")
    def _kind(self) -> Generate:
        if self.kind is IndicatorKind.METADATA:
            raise ValueError("metadata indicators cannot be generated; list them inline")
        return self


class Share(Strict):
    """Indicators shared in one inject: inline, from a file, generated, or any mix."""

    by: OrgName | None = None
    indicators: list[IndicatorIn] = Field(default_factory=list)
    file: str | None = Field(None, description="JSON lines, YAML/JSON list or CSV (kind,value[,quality]).")
    generate: list[Generate] | Generate | None = None
    tlp: Tlp | None = Field(None, description="Stricter than the crisis's TLP if set; never wider.")
    tlprecipients: list[OrgName] | None = None
    expect: Expect | None = None

    @model_validator(mode="after")
    def _something(self) -> Share:
        if not self.indicators and self.file is None and self.generate is None:
            raise ValueError("a share needs indicators, a file or generate")
        return self

    @property
    def generators(self) -> list[Generate]:
        if self.generate is None:
            return []
        return self.generate if isinstance(self.generate, list) else [self.generate]


INJECTS = ("open", "activate", "change_level", "share", "conclude", "close")


class Step(Strict):
    """One inject at a time relative to the start; `note` alone is a message for the players."""

    at: Duration
    note: str | None = Field(None, max_length=2000)
    open: Open | None = None
    activate: Activate | None = None
    change_level: ChangeLevel | None = None
    share: Share | None = None
    conclude: Stand | None = None
    close: Stand | None = None

    @model_validator(mode="after")
    def _one_inject(self) -> Step:
        given = [name for name in INJECTS if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"one inject per step, not {' and '.join(given)}")
        if not given and self.note is None:
            raise ValueError(f"a step needs one of {', '.join(INJECTS)} or a note")
        return self

    @property
    def kind(self) -> str:
        return next((n for n in INJECTS if getattr(self, n) is not None), "note")


class Scenario(Strict):
    """A whole exercise; validated fully (with the files it names) before anything is published."""

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    seed: int = 0
    speed: float | None = Field(None, gt=0, description="Default speed factor; --speed overrides.")
    keys_file: str | None = Field(None, description="YAML/JSON mapping key names to API keys.")
    generate_keys: bool = Field(False, description="Create exercise-only keys in the server's keys file.")
    participants: list[Participant] = Field(min_length=1)
    expect: Expect | None = Field(None, description="Default expectation for every share.")
    timeline: list[Step] = Field(min_length=1)

    def participant(self, org: str) -> Participant | None:
        return next((p for p in self.participants if p.org == org), None)

    @property
    def simulated(self) -> list[Participant]:
        return [p for p in self.participants if p.simulate is not None]

    @property
    def duration_s(self) -> float:
        return max(step.at for step in self.timeline)
