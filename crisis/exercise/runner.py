"""Run a scenario on the real bus: timed injects through the API, simulated providers on the stream.

Everything the runner causes is in `exercise` mode: crises are opened with `mode: exercise` (fixed for
their life) and every indicator and action belongs to such a crisis. Time runs `speed` times faster
than the scenario's clock; the report's wall-clock figures are scaled back by the same factor.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crisis.domain.enums import Role
from crisis.domain.envelope import utcnow
from crisis.domain.report import Report
from crisis.exercise.api import Api, ApiError
from crisis.exercise.checks import actor
from crisis.exercise.deadlines import Expectation
from crisis.exercise.durations import clock
from crisis.exercise.injects import Injector, summary
from crisis.exercise.loading import Loaded
from crisis.exercise.providers import SimulatedProvider
from crisis.exercise.sampling import Plan
from crisis.exercise.scenario import Step
from crisis.exercise.stream import Subscription


@dataclass
class InjectRecord:
    index: int
    at_s: float
    kind: str
    summary: str
    sent_at: datetime | None = None
    error: str | None = None


@dataclass
class RunState:
    """What the progress display shows; updated by the runner as it goes."""

    total: int
    speed: float
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    next_step: Step | None = None
    crisis_id: str | None = None
    acks: Counter[str] = field(default_factory=Counter)
    failures: int = 0
    playing: bool = False

    def exercise_clock(self) -> float:
        """Exercise seconds since the first inject was due; 0 while keys and subscriptions are prepared."""
        return (time.monotonic() - self.started) * self.speed if self.playing else 0.0


@dataclass
class RunResult:
    crisis_id: str | None
    report: Report | None
    injects: list[InjectRecord]
    expectations: list[Expectation]
    plans: list[Plan]
    speed: float
    interrupted: bool
    started_at: datetime
    report_error: str | None = None


class Runner:
    def __init__(
        self,
        loaded: Loaded,
        keys: dict[str, str],
        *,
        api_url: str,
        stream_url: str,
        speed: float,
        say: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.loaded = loaded
        self.scenario = loaded.scenario
        self.keys = keys
        self.api = Api(api_url)
        self.stream_url = stream_url
        self.speed = speed
        self.say = say
        self.state = RunState(total=len(self.scenario.timeline), speed=speed)
        self.state.next_step = self.scenario.timeline[0]
        self.injects = [
            InjectRecord(
                i, st.at, st.kind, summary(st, len(loaded.shares.get(i, [])), actor(self.scenario, st))
            )
            for i, st in enumerate(self.scenario.timeline)
        ]
        self.injector = Injector(loaded, keys, self.api, uuid.uuid4().hex[:12])
        self._providers: list[SimulatedProvider] = []
        self.started_at = utcnow()

    async def run(self, stop: asyncio.Event | None = None) -> RunResult:
        """Subscribe, play the timeline, then fetch the report; a stop still gets the report."""
        stop = stop or asyncio.Event()
        try:
            interrupted = await self._session(stop)
            report, error = await self._report()
        finally:
            await self.api.aclose()
        plans = [plan for p in self._providers for plan in p.plans]
        return RunResult(
            self.state.crisis_id,
            report,
            self.injects,
            self.injector.expectations,
            plans,
            self.speed,
            interrupted,
            self.started_at,
            error,
        )

    async def _session(self, stop: asyncio.Event) -> bool:
        """Keys, subscriptions, the timeline; True when stopped early. Subscriptions end with it."""
        tasks: list[asyncio.Task[Any]] = []
        try:
            await self._check_keys()
            tasks = await self._subscribe()
            if not await self._play(stop):
                return True
            await self._drain(stop)
            return False
        finally:
            for provider in self._providers:
                await provider.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ preparation (nothing published)

    async def _check_keys(self) -> None:
        """Every key authenticates; a server re-reads its keys file within a second: new keys get a moment."""
        deadline = time.monotonic() + 5.0
        for org, key in self.keys.items():
            while True:
                try:
                    await self.api.who_am_i(key)
                    break
                except ApiError as exc:
                    if exc.status == 0:
                        raise
                    if exc.status != 401 or time.monotonic() > deadline:
                        raise ApiError(exc.status, f"the key for {org} does not work: {exc.detail}") from exc
                    await asyncio.sleep(0.25)

    async def _subscribe(self) -> list[asyncio.Task[Any]]:
        """Simulated providers and the controller's own watch, all subscribed before the first inject."""
        s = self.scenario
        for p in s.simulated:
            provider = SimulatedProvider(
                p, self.keys[p.org], self.api, self.stream_url, seed=s.seed, speed=self.speed
            )
            await provider.subscription.connect()
            self._providers.append(provider)
        tasks = [asyncio.create_task(p.run(), name=f"provider {p.org}") for p in self._providers]
        for task in tasks:
            task.add_done_callback(self._report_failure)
        watch = Subscription(self.stream_url, self._reader_key(), types=("action.reported",), mode="exercise")
        await watch.connect()
        tasks.append(asyncio.create_task(self._watch(watch), name="watch"))
        return tasks

    def _report_failure(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.say(f"{task.get_name()} stopped: {task.exception()}")

    def _reader_key(self) -> str:
        """A coordinator's key if the runner has one (it reads everything at the crisis's TLP), else any."""
        for p in self.scenario.participants:
            if p.role is Role.COORDINATOR and p.org in self.keys:
                return self.keys[p.org]
        return next(iter(self.keys.values()))

    async def _watch(self, sub: Subscription) -> None:
        try:
            async for event in sub.events():
                if event.get("subject") == self.state.crisis_id:
                    self.state.acks[str((event.get("data") or {}).get("outcome"))] += 1
        finally:
            await sub.close()

    # ------------------------------------------------------------------ the timeline

    async def _play(self, stop: asyncio.Event) -> bool:
        """Each inject at its time; False when stopped early."""
        # The exercise clock starts now, once keys and subscriptions are ready, not at construction.
        self.state.started = time.monotonic()
        self.state.playing = True
        self.started_at = utcnow()
        for index, step in enumerate(self.scenario.timeline):
            self.state.next_step = step
            due = self.state.started + step.at / self.speed
            if await _stopped(stop, due - time.monotonic()):
                return False
            record = self.injects[index]
            record.sent_at = utcnow()
            try:
                await self.injector.apply(index, step)
                if step.open is not None and self.injector.crisis_id is not None:
                    self._opened(self.injector.crisis_id)
                self.say(f"[{clock(step.at)}] {record.summary}")
            except ApiError as exc:
                record.error = str(exc)
                self.state.failures += 1
                self.say(f"[{clock(step.at)}] FAILED {record.summary}: {exc}")
                if step.kind == "open":
                    raise
            self.state.done = index + 1
        self.state.next_step = None
        return True

    async def _drain(self, stop: asyncio.Event) -> None:
        """If the crisis is still open, let the simulated providers give their pending answers."""
        last = self.scenario.timeline[-1]
        if last.kind == "close":
            return
        idle = asyncio.create_task(self._idle())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([idle, stopper], return_when=asyncio.FIRST_COMPLETED)
        for waiter in (idle, stopper):
            waiter.cancel()

    async def _idle(self) -> None:
        for provider in self._providers:
            await provider.idle()

    def _opened(self, crisis_id: str) -> None:
        self.state.crisis_id = crisis_id
        # Real provider bots joining the exercise filter on this id (mode=exercise&crisis=...).
        self.say(f"crisis {crisis_id} opened in exercise mode")
        for provider in self._providers:
            provider.crisis_id.set_result(crisis_id)

    # ------------------------------------------------------------------ the end

    async def _report(self) -> tuple[Report | None, str | None]:
        if self.state.crisis_id is None:
            return None, "the crisis was never opened"
        try:
            return await self.api.report(self._reader_key(), self.state.crisis_id), None
        except ApiError as exc:
            return None, str(exc)

    @property
    def provider_errors(self) -> list[str]:
        return [e for p in self._providers for e in p.tally.errors]


async def _stopped(stop: asyncio.Event, delay: float) -> bool:
    """Sleep `delay` seconds unless `stop` is set first; True when stopped."""
    if stop.is_set():
        return True
    if delay <= 0:
        return False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay):
            await stop.wait()
    return stop.is_set()
