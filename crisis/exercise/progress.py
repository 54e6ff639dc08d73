"""The controller's view while an exercise runs: injects done, acks received, time to the next inject."""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table

from crisis.exercise.durations import clock
from crisis.exercise.runner import RunState


class Dashboard:
    """A rich renderable over the runner's state; rich.Live redraws it a few times a second."""

    def __init__(self, state: RunState, name: str) -> None:
        self.state = state
        self.name = name

    def __rich__(self) -> RenderableType:
        s = self.state
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("exercise", f"{self.name}  [yellow]EXERCISE[/] x{s.speed:g}")
        grid.add_row("clock", f"{clock(s.exercise_clock())} exercise time")
        grid.add_row("injects", f"{s.done}/{s.total}" + (f"  ({s.failures} failed)" if s.failures else ""))
        grid.add_row("", ProgressBar(total=s.total, completed=s.done, width=40))
        grid.add_row("next", self._next())
        received = s.acks.get("received", 0)
        actions = sum(n for outcome, n in s.acks.items() if outcome != "received")
        grid.add_row("acks", f"{received} received, {actions} actions ({_outcomes(s.acks)})")
        return Group(grid)

    def _next(self) -> str:
        s = self.state
        if s.next_step is None:
            return "none: finishing"
        if not s.playing:
            return f"{s.next_step.kind} at {clock(s.next_step.at)} (preparing keys and subscriptions)"
        wall = s.started + s.next_step.at / s.speed - time.monotonic()
        wall = max(wall, 0)
        return f"{s.next_step.kind} at {clock(s.next_step.at)}, in {clock(wall * s.speed)} ({wall:.0f} s)"


def _outcomes(acks: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(acks.items()) if k != "received") or "none yet"
