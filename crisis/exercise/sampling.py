"""Response-time distributions of simulated providers, sampled reproducibly from the scenario's seed."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crisis.exercise.durations import Duration, parse_duration


class Delay(BaseModel):
    """`fixed` (median_s), `uniform` (min_s..max_s) or `lognormal` (median_s, sigma, optional bounds)."""

    model_config = ConfigDict(extra="forbid")

    distribution: Literal["fixed", "uniform", "lognormal"] = "fixed"
    median_s: Duration | None = None
    min_s: Duration | None = None
    max_s: Duration | None = None
    sigma: float = Field(0.5, gt=0, le=5)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        # `receipt: "00:02:00"` or `receipt: 120` means a fixed delay.
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return {"distribution": "fixed", "median_s": parse_duration(value)}
        return value

    @model_validator(mode="after")
    def _parameters(self) -> Delay:
        if self.distribution in ("fixed", "lognormal") and self.median_s is None:
            raise ValueError(f"a {self.distribution} delay needs median_s")
        if self.distribution == "uniform" and (self.min_s is None or self.max_s is None):
            raise ValueError("a uniform delay needs min_s and max_s")
        if self.min_s is not None and self.max_s is not None and self.min_s > self.max_s:
            raise ValueError("min_s must not exceed max_s")
        return self

    def sample(self, rng: random.Random) -> float:
        """One delay in seconds of exercise time."""
        if self.distribution == "fixed":
            return float(self.median_s or 0.0)
        if self.distribution == "uniform":
            return rng.uniform(self.min_s or 0.0, self.max_s or 0.0)
        value = rng.lognormvariate(math.log(max(self.median_s or 0.0, 1e-3)), self.sigma)
        low = self.min_s if self.min_s is not None else 0.0
        high = self.max_s if self.max_s is not None else math.inf
        return min(max(value, low), high)


def rng_for(seed: int, *parts: str) -> random.Random:
    """A generator per (seed, provider, indicator): the same answer whatever order events arrive in."""
    return random.Random(":".join([str(seed), *parts]))  # noqa: S311 - simulation, not security


def weighted(rng: random.Random, weights: dict[str, float]) -> str:
    names = sorted(weights)  # sorted: dict order must not change a seeded run
    return rng.choices(names, weights=[weights[n] for n in names])[0]


@dataclass(frozen=True)
class Plan:
    """What a simulated provider decided for one indicator; delays in exercise seconds from the share."""

    org: str
    indicator_id: str
    answered: bool
    receipt_s: float | None
    action_s: float | None
    outcome: str | None
