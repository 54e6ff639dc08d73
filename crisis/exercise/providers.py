"""Simulated provider bots: each subscribes to the exercise stream and answers after its sampled delays."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime

from crisis.domain.envelope import utcnow
from crisis.exercise.api import Api, ApiError
from crisis.exercise.sampling import Plan, rng_for, weighted
from crisis.exercise.scenario import Participant, Simulation
from crisis.exercise.stream import Event, Subscription

TYPES = ("indicator.shared",)
# Beyond this, an event's own time is not trusted for scheduling (clock skew, or a replay).
MAX_LAG_S = 5.0


@dataclass
class Tally:
    """Counts for the progress display; errors keep the API's words."""

    received: int = 0
    actioned: int = 0
    errors: list[str] = field(default_factory=list)


class SimulatedProvider:
    """One provider organisation; its pending answers are tasks cancelled when the exercise ends."""

    def __init__(
        self, participant: Participant, key: str, api: Api, stream_url: str, *, seed: int, speed: float
    ) -> None:
        assert participant.simulate is not None
        self.org = participant.org
        self.sim: Simulation = participant.simulate
        self.key = key
        self.api = api
        self.seed = seed
        self.speed = speed
        self.crisis_id: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.plans: list[Plan] = []
        self.tally = Tally()
        self.subscription = Subscription(stream_url, key, types=TYPES, mode="exercise")
        self._seen: set[tuple[str, str]] = set()
        self._pending: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Answer indicators of this exercise's crisis until cancelled."""
        async for event in self.subscription.events():
            crisis_id = await self.crisis_id
            if event.get("subject") == crisis_id:
                self._consider(event)

    def _consider(self, event: Event) -> None:
        data = event.get("data") or {}
        identity = (str(data.get("kind")), str(data.get("canonical")))
        if identity in self._seen:
            return  # a sighting of an indicator already answered: the API keeps one indicator
        self._seen.add(identity)
        if self.sim.kinds is not None and data.get("kind") not in self.sim.kinds:
            return
        plan = self._decide(str(data["indicator_id"]), *identity)
        self.plans.append(plan)
        if plan.answered:
            task = asyncio.create_task(self._answer(plan, _shared_at(event)))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _decide(self, indicator_id: str, kind: str, canonical: str) -> Plan:
        rng = rng_for(self.seed, self.org, kind, canonical)
        if rng.random() < self.sim.failure_rate:
            return Plan(self.org, indicator_id, False, None, None, None)
        receipt = self.sim.receipt.sample(rng)
        action = receipt + self.sim.action_delay.sample(rng)
        acts = rng.random() >= self.sim.action_failure_rate
        outcome = weighted(rng, {str(k): v for k, v in self.sim.outcomes.items()}) if acts else None
        return Plan(self.org, indicator_id, True, receipt, action if acts else None, outcome)

    async def _answer(self, plan: Plan, shared_at: datetime) -> None:
        await self._post_at(shared_at, plan.receipt_s or 0.0, plan.indicator_id, "received")
        if plan.outcome is not None and plan.action_s is not None:
            await self._post_at(shared_at, plan.action_s, plan.indicator_id, plan.outcome)

    async def _post_at(self, shared_at: datetime, after_s: float, indicator_id: str, outcome: str) -> None:
        due = after_s / self.speed - (utcnow() - shared_at).total_seconds()
        if due > 0:
            await asyncio.sleep(due)
        body = {"indicator_id": indicator_id, "outcome": outcome, "note": "simulated provider"}
        try:
            await self.api.act(
                self.key, await self.crisis_id, body, idem=f"sim-{self.org}-{indicator_id}-{outcome}"
            )
        except ApiError as exc:
            self.tally.errors.append(f"{self.org} {outcome} {indicator_id}: {exc}")
            return
        if outcome == "received":
            self.tally.received += 1
        else:
            self.tally.actioned += 1

    async def idle(self) -> None:
        """Returns once every answer decided so far has been given."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel answers not yet given (the crisis is closed, or the controller stopped the run)."""
        for task in list(self._pending):
            task.cancel()
        for task in list(self._pending):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.subscription.close()


def _shared_at(event: Event) -> datetime:
    """The share's time from the log, unless it is in the future or stale by our clock."""
    now = utcnow()
    try:
        at = datetime.fromisoformat(str(event["time"]))
    except (KeyError, ValueError):
        return now
    lag = (now - at).total_seconds()
    return at if 0 <= lag <= MAX_LAG_S else now
