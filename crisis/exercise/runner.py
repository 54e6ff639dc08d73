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
from crisis.exercise.api import Api, ApiError, Json
from crisis.exercise.checks import actor
from crisis.exercise.deadlines import Expectation
from crisis.exercise.durations import clock
from crisis.exercise.loading import Loaded
from crisis.exercise.providers import Plan, SimulatedProvider
from crisis.exercise.scenario import Expect, Step
from crisis.exercise.stream import Subscription

BATCH = 500  # indicators per request, well under the API's default limit of 1,000


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

    def exercise_clock(self) -> float:
        return (time.monotonic() - self.started) * self.speed


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
        self.injects = [
            InjectRecord(
                i, st.at, st.kind, _summary(st, len(loaded.shares.get(i, [])), actor(self.scenario, st))
            )
            for i, st in enumerate(self.scenario.timeline)
        ]
        self.expectations: list[Expectation] = []
        self._run_id = uuid.uuid4().hex[:12]
        self._version = 0
        self._providers: list[SimulatedProvider] = []
        self.started_at = utcnow()

    async def run(self, stop: asyncio.Event | None = None) -> RunResult:
        """Subscribe, play the timeline, then fetch the report; a stop still gets the report."""
        stop = stop or asyncio.Event()
        tasks: list[asyncio.Task[Any]] = []
        interrupted = False
        try:
            await self._check_keys()
            tasks = await self._subscribe()
            interrupted = not await self._play(stop)
            if not interrupted:
                await self._drain(stop)
        finally:
            for provider in self._providers:
                await provider.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        report, error = await self._report()
        await self.api.aclose()
        plans = [plan for p in self._providers for plan in p.plans]
        return RunResult(
            self.state.crisis_id,
            report,
            self.injects,
            self.expectations,
            plans,
            self.speed,
            interrupted,
            self.started_at,
            error,
        )

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
        watch = Subscription(self.stream_url, self._reader_key(), types=("action.reported",), mode="exercise")
        await watch.connect()
        tasks.append(asyncio.create_task(self._watch(watch), name="watch"))
        return tasks

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
        self.started_at = utcnow()
        for index, step in enumerate(self.scenario.timeline):
            self.state.next_step = step
            due = self.state.started + step.at / self.speed
            if await _stopped(stop, due - time.monotonic()):
                return False
            record = self.injects[index]
            record.sent_at = utcnow()
            try:
                await self._inject(index, step)
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

    async def _inject(self, index: int, step: Step) -> None:
        org = actor(self.scenario, step)
        key = self.keys.get(org or "", "")
        idem = f"exercise-{self._run_id}-{index}"
        if step.open is not None:
            body = step.open.model_dump(mode="json", exclude={"by"}, exclude_none=True) | {"mode": "exercise"}
            crisis = await self.api.open(key, body, idem)
            self._opened(crisis)
        elif step.share is not None:
            await self._share(index, step, key, idem)
        elif step.kind != "note":
            await self._transition(step, key, idem)

    def _opened(self, crisis: Json) -> None:
        if crisis.get("mode") != "exercise":
            raise ApiError(
                0, f"the API opened crisis {crisis.get('id')} as {crisis.get('mode')}, not exercise"
            )
        self.state.crisis_id = str(crisis["id"])
        self._version = int(crisis["version"])
        for provider in self._providers:
            provider.crisis_id.set_result(self.state.crisis_id)

    async def _transition(self, step: Step, key: str, idem: str) -> None:
        inject = getattr(step, step.kind)
        to = {
            "activate": "activated",
            "change_level": "activated",
            "conclude": "concluded",
            "close": "closed",
        }
        body: Json = {"to": to[step.kind], "reason": inject.reason}
        if step.activate is not None:
            body |= {"level": step.activate.level, "criteria": [str(c) for c in step.activate.criteria]}
        if step.change_level is not None:
            body["level"] = step.change_level.level
        crisis_id = self._crisis_id()
        try:
            crisis = await self.api.transition(
                key, crisis_id, body | {"expected_version": self._version}, idem
            )
        except ApiError as exc:
            if exc.status != 409:
                raise
            # Someone else (a player, a real duty officer in the exercise) moved the crisis: retry on top.
            current = await self.api.crisis(key, crisis_id)
            body["expected_version"] = int(current["version"])
            crisis = await self.api.transition(key, crisis_id, body, idem + "-retry")
        self._version = int(crisis["version"])

    async def _share(self, index: int, step: Step, key: str, idem: str) -> None:
        assert step.share is not None
        items = self.loaded.shares[index]
        expect = step.share.expect or self.scenario.expect
        rejected: list[str] = []
        for start in range(0, len(items), BATCH):
            body: Json = {"indicators": items[start : start + BATCH]}
            if step.share.tlp is not None:
                body["tlp"] = str(step.share.tlp)
            result = await self.api.share(key, self._crisis_id(), body, f"{idem}-{start}")
            for item in result.get("items", []):
                if item.get("status") == "created" and expect is not None:
                    self._expect(expect, str(item["indicator_id"]))
                elif item.get("status") == "rejected":
                    rejected.append(
                        f"#{start + int(item['index'])}: {(item.get('error') or {}).get('message')}"
                    )
        if rejected:
            raise ApiError(422, f"{len(rejected)} indicators refused: " + "; ".join(rejected[:3]))

    def _expect(self, expect: Expect, indicator_id: str) -> None:
        orgs = expect.providers
        if orgs == "all":
            orgs = [p.org for p in self.scenario.participants if p.role is Role.PROVIDER]
        self.expectations += [
            Expectation(org, indicator_id, expect.receipt_within, expect.action_within) for org in orgs
        ]

    def _crisis_id(self) -> str:
        if self.state.crisis_id is None:
            raise ApiError(0, "the crisis was never opened")
        return self.state.crisis_id

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


def _summary(step: Step, count: int, org: str | None) -> str:
    if step.open is not None:
        level = f" level {step.open.level}" if step.open.level else ""
        return f"{org} opens ({step.open.status}{level}): {step.open.title}"
    if step.activate is not None:
        return f"activate at level {step.activate.level}"
    if step.change_level is not None:
        return f"change level to {step.change_level.level}"
    if step.share is not None:
        return f"{org} shares {count} indicator{'s' if count != 1 else ''}"
    if step.conclude is not None:
        return "conclude"
    if step.close is not None:
        return "close"
    return f"note: {step.note}"
