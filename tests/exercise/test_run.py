"""A scenario played at high speed on the embedded broker, through the real API and stream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from crisis.cli import main
from crisis.exercise.errors import ScenarioError
from crisis.exercise.loading import load
from crisis.exercise.play import play, prepare
from crisis.exercise.runner import Runner
from tests.conftest import Stack
from tests.exercise.support import FAST, SPEED, Tap, write

pytestmark = pytest.mark.kafka


def _runner(stack: Stack, path: Path, say: Callable[[str], None] = lambda _line: None) -> Runner:
    return prepare(
        load(path),
        api_url=stack.api_url,
        stream_url=stack.ws_url,
        speed=SPEED,
        keys_file=stack.settings.keys_file,
        say=say,
    )


async def test_events_in_order_all_exercise_and_none_reach_live(full_stack: Stack, tmp_path: Path) -> None:
    watcher = full_stack.add_key("watch", "coordinator")
    async with (
        Tap(full_stack.ws_url, watcher, "exercise") as exercise,
        Tap(full_stack.ws_url, watcher, "live") as live,
    ):
        played = await play(_runner(full_stack, write(tmp_path)), tmp_path / "reports")
        crisis_id = played.result.crisis_id
        assert crisis_id is not None
        await exercise.wait_for("crisis.closed", crisis_id)
        # A live crisis opened afterwards: the live subscriber sees it, so it was listening all along.
        async with httpx.AsyncClient(base_url=full_stack.api_url) as http:
            headers = {"Authorization": f"Bearer {watcher}"}
            r = await http.post("/v1/crises", json={"title": "real"}, headers=headers)
            assert r.status_code == 201, r.text
        await live.wait_for("crisis.opened", r.json()["id"])

    ours = [e for e in exercise.events if e["subject"] == crisis_id]
    assert all(e["mode"] == "exercise" for e in ours)
    crisis_types = [e["type"] for e in ours if e["type"].startswith("crisis.")]
    assert crisis_types == ["crisis.activated", "crisis.level_changed", "crisis.concluded", "crisis.closed"]
    types = [e["type"] for e in ours]
    assert types[1:5] == ["indicator.shared"] * 4  # shared at 00:01:00, before anyone answers
    assert types.index("crisis.level_changed") > 4
    actions = [e["data"] for e in ours if e["type"] == "action.reported"]
    assert len(actions) == 16  # 2 providers x 4 indicators x (received + action)
    assert {a["outcome"] for a in actions if a["provider_org"] == "quick"} == {"received", "removed"}
    assert [e["subject"] for e in live.events] == [r.json()["id"]]
    assert played.result.interrupted is False
    assert all(i.error is None and i.sent_at is not None for i in played.result.injects)
    assert [p.name for p in played.paths] == ["drill.html", "drill.md", "drill.json"]


async def test_report_figures_match_the_simulated_delays(full_stack: Stack, tmp_path: Path) -> None:
    played = await play(_runner(full_stack, write(tmp_path)), None)
    debrief = played.debrief
    assert debrief is not None and played.paths == []
    # One wall-clock tick of scheduling and HTTP costs `SPEED` times as much in exercise time.
    tolerance = 0.08 * SPEED
    figures = {p.org: p for p in debrief.providers}
    print(
        {
            org: (f.median_receipt_s, f.median_action_s, f.slowest_receipt_s, f.slowest_action_s)
            for org, f in figures.items()
        }
    )
    expected = {"quick": (60, 180), "steady": (300, 900)}
    for org, (receipt, action) in expected.items():
        f = figures[org]
        assert (f.indicators, f.received, f.actioned) == (4, 4, 4)
        # Never early: each answer waits its full delay from the share's time in the log.
        assert f.median_receipt_s is not None and f.median_receipt_s >= receipt
        assert f.median_receipt_s == pytest.approx(receipt, abs=tolerance)
        assert f.median_action_s == pytest.approx(action, abs=tolerance)
        assert f.slowest_action_s == pytest.approx(action, abs=tolerance)
        assert f.receipt_within_hour == 4 and f.action_within_hour == 4
    # And item by item, against what each simulated provider drew.
    items = {(p.org, i.indicator_id): i for p in debrief.report.providers for i in p.items}
    assert len(played.result.plans) == 8
    for plan in played.result.plans:
        item = items[(plan.org, plan.indicator_id)]
        assert item.receipt_s is not None and item.action_s is not None
        assert item.receipt_s * SPEED == pytest.approx(plan.receipt_s, abs=tolerance)
        assert item.action_s * SPEED == pytest.approx(plan.action_s, abs=tolerance)
        assert item.first_action == plan.outcome
    # steady answers in 5 min and acts in 15 min: both its deadlines (2 min, 10 min) are missed for all 4.
    misses = {(m.provider, m.what) for m in debrief.misses}
    assert misses == {("steady", "receipt"), ("steady", "action")}
    assert len(debrief.misses) == 8


async def test_stopping_midway_still_writes_the_report(full_stack: Stack, tmp_path: Path) -> None:
    stop = asyncio.Event()

    def said(line: str) -> None:
        # The controller stops right after the level change, long before conclude is due.
        if "change level" in line:
            stop.set()

    runner = _runner(full_stack, write(tmp_path), said)
    played = await play(runner, tmp_path, stop)
    assert played.result.interrupted
    assert [i.sent_at is not None for i in played.result.injects] == [True, True, True, False, False]
    assert played.debrief is not None and str(played.debrief.report.crisis.status) == "activated"
    assert "stopped by the controller" in (tmp_path / "drill.md").read_text()


async def test_an_invalid_scenario_publishes_nothing(api_stack: Stack, tmp_path: Path) -> None:
    bad = FAST.replace('"https://video.example/watch?v=1"', '"ftp://video.example/1"')
    path = write(tmp_path, bad)
    with pytest.raises(ScenarioError) as caught:
        _runner(api_stack, path)
    message = str(caught.value)
    line = bad.splitlines().index('        - {kind: url, value: "ftp://video.example/1"}') + 1
    assert f"{path}:{line}: timeline[1].share.indicators[1].value:" in message
    assert "http and https" in message
    await asyncio.sleep(0.2)
    assert api_stack.ledger.book.crises == {}
    assert not api_stack.settings.keys_file.exists()  # not even keys were made


async def test_the_run_command_writes_html_markdown_and_json(full_stack: Stack, tmp_path: Path) -> None:
    args = ["exercise", "run", str(write(tmp_path)), "--speed", str(SPEED), "--api", full_stack.api_url]
    args += ["--stream", full_stack.ws_url, "--keys-file", str(full_stack.settings.keys_file)]
    args += ["--report-dir", str(tmp_path / "out")]
    # The command runs its own event loop: in a worker thread, beside the stack's loop.
    assert await asyncio.to_thread(main, args) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["drill.html", "drill.json", "drill.md"]
    assert "<svg" in (tmp_path / "out" / "drill.html").read_text()
