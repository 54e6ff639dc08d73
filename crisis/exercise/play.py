"""One exercise from file to report: the function the CLI and the tests call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crisis.exercise import keys as participant_keys
from crisis.exercise import report
from crisis.exercise.figures import Debrief
from crisis.exercise.loading import Loaded
from crisis.exercise.runner import Runner, RunResult


@dataclass
class Played:
    result: RunResult
    debrief: Debrief | None
    paths: list[Path]
    provider_errors: list[str]


def prepare(
    loaded: Loaded, *, api_url: str, stream_url: str, speed: float | None, keys_file: Path | None,
    say: Callable[[str], None] = lambda _line: None,
) -> Runner:  # fmt: skip
    """Keys resolved (or created) and a runner ready; ScenarioError here means nothing was published."""
    keys = participant_keys.resolve(loaded, keys_file)
    factor = speed or loaded.scenario.speed or 1.0
    return Runner(loaded, keys, api_url=api_url, stream_url=stream_url, speed=factor, say=say)


def debrief_of(runner: Runner, result: RunResult) -> Debrief | None:
    if result.report is None:
        return None
    return Debrief(
        report=result.report,
        speed=result.speed,
        expectations=result.expectations,
        scenario=runner.scenario.name,
        injects=[(i.at_s, i.summary, i.sent_at, i.error) for i in result.injects],
        interrupted=result.interrupted,
        origin=result.started_at,
        plans=result.plans,
    )


async def play(runner: Runner, report_dir: Path | None, stop: asyncio.Event | None = None) -> Played:
    """Run the timeline, then write the report (also after a stop: the controller keeps what happened)."""
    result = await runner.run(stop)
    debrief = debrief_of(runner, result)
    paths: list[Path] = []
    if debrief is not None and report_dir is not None:
        paths = report.write(debrief, report_dir, runner.loaded.path.stem)
    return Played(result, debrief, paths, runner.provider_errors)
