"""Each inject as API calls, in exercise mode; remembers the crisis id and the version it last saw."""

from __future__ import annotations

from crisis.domain.enums import Role
from crisis.exercise.api import Api, ApiError, Json
from crisis.exercise.checks import actor
from crisis.exercise.deadlines import Expectation
from crisis.exercise.loading import Loaded
from crisis.exercise.scenario import Expect, Step

BATCH = 500  # indicators per request, well under the API's default limit of 1,000
TARGET = {"activate": "activated", "change_level": "activated", "conclude": "concluded", "close": "closed"}


class Injector:
    def __init__(self, loaded: Loaded, keys: dict[str, str], api: Api, run_id: str) -> None:
        self.loaded = loaded
        self.scenario = loaded.scenario
        self.keys = keys
        self.api = api
        self.run_id = run_id
        self.crisis_id: str | None = None
        self.version = 0
        self.expectations: list[Expectation] = []

    async def apply(self, index: int, step: Step) -> None:
        """One step; ApiError carries the API's reason. Retries reuse the step's Idempotency-Key."""
        key = self.keys.get(actor(self.scenario, step) or "", "")
        idem = f"exercise-{self.run_id}-{index}"
        if step.open is not None:
            body = step.open.model_dump(mode="json", exclude={"by"}, exclude_none=True)
            self._opened(await self.api.open(key, body | {"mode": "exercise"}, idem))
        elif step.share is not None:
            await self._share(index, step, key, idem)
        elif step.kind != "note":
            await self._transition(step, key, idem)

    def _opened(self, crisis: Json) -> None:
        if crisis.get("mode") != "exercise":
            raise ApiError(
                0, f"the API opened crisis {crisis.get('id')} as {crisis.get('mode')}, not exercise"
            )
        self.crisis_id = str(crisis["id"])
        self.version = int(crisis["version"])

    def _crisis(self) -> str:
        if self.crisis_id is None:
            raise ApiError(0, "the crisis was never opened")
        return self.crisis_id

    async def _transition(self, step: Step, key: str, idem: str) -> None:
        inject = getattr(step, step.kind)
        body: Json = {"to": TARGET[step.kind], "reason": inject.reason}
        if step.activate is not None:
            body |= {"level": step.activate.level, "criteria": [str(c) for c in step.activate.criteria]}
        if step.change_level is not None:
            body["level"] = step.change_level.level
        crisis_id = self._crisis()
        try:
            crisis = await self.api.transition(
                key, crisis_id, body | {"expected_version": self.version}, idem
            )
        except ApiError as exc:
            if exc.status != 409:
                raise
            # A player (a real duty officer in the exercise) moved the crisis meanwhile: try on top of it.
            current = await self.api.crisis(key, crisis_id)
            body["expected_version"] = int(current["version"])
            crisis = await self.api.transition(key, crisis_id, body, idem + "-retry")
        self.version = int(crisis["version"])

    async def _share(self, index: int, step: Step, key: str, idem: str) -> None:
        assert step.share is not None
        items = self.loaded.shares[index]
        expect = step.share.expect or self.scenario.expect
        rejected: list[str] = []
        for start in range(0, len(items), BATCH):
            body: Json = {"indicators": items[start : start + BATCH]}
            if step.share.tlp is not None:
                body["tlp"] = str(step.share.tlp)
            if step.share.tlprecipients is not None:
                body["tlprecipients"] = step.share.tlprecipients
            result = await self.api.share(key, self._crisis(), body, f"{idem}-{start}")
            for item in result.get("items", []):
                if item.get("status") == "created" and expect is not None:
                    self._expect(expect, str(item["indicator_id"]))
                elif item.get("status") == "rejected":
                    reason = (item.get("error") or {}).get("message")
                    rejected.append(f"#{start + int(item['index'])}: {reason}")
        if rejected:
            raise ApiError(422, f"{len(rejected)} indicators refused: " + "; ".join(rejected[:3]))

    def _expect(self, expect: Expect, indicator_id: str) -> None:
        orgs = expect.providers
        if orgs == "all":
            orgs = [p.org for p in self.scenario.participants if p.role is Role.PROVIDER]
        self.expectations += [
            Expectation(org, indicator_id, expect.receipt_within, expect.action_within) for org in orgs
        ]


def summary(step: Step, count: int, org: str | None) -> str:
    """One line per inject for the controller's console and the report."""
    if step.open is not None:
        level = f" level {step.open.level}" if step.open.level else ""
        return f"{org} opens ({step.open.status}{level}): {step.open.title}"
    if step.activate is not None:
        return f"activate at level {step.activate.level}"
    if step.change_level is not None:
        return f"change level to {step.change_level.level}"
    if step.share is not None:
        return f"{org} shares {count} indicator{'s' if count != 1 else ''}"
    if step.conclude is not None or step.close is not None:
        return step.kind
    return f"note: {step.note}"
