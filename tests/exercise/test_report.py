"""The after-action report from a report JSON: figures in exercise time, Markdown, HTML with inline SVG."""

from __future__ import annotations

import json
import re
import stat
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from crisis.cli import main
from crisis.domain.report import Report, TimelineEntry, render_markdown
from crisis.exercise import figures, plots, report, svg
from crisis.exercise.deadlines import Expectation
from crisis.exercise.figures import Debrief
from crisis.exercise.loading import parse
from crisis.exercise.progress import Dashboard
from crisis.exercise.runner import RunState
from crisis.exercise.sampling import Plan
from tests.exercise.support import FAST

T0 = datetime(2026, 11, 23, 20, 0, 0, tzinfo=UTC)
SPEED = 60.0


def at(wall_s: float) -> str:
    return (T0 + timedelta(seconds=wall_s)).isoformat()


def _item(indicator: str, shared: float, receipt: float | None, action: float | None) -> dict[str, Any]:
    return {
        "indicator_id": indicator,
        "shared_at": at(shared),
        "received_at": at(shared + receipt) if receipt is not None else None,
        "receipt_s": receipt,
        "first_action": "removed" if action is not None else None,
        "first_action_at": at(shared + action) if action is not None else None,
        "action_s": action,
    }


def _provider(org: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "org": org, "indicators": len(items), "received": 0, "actioned": 0, "receipt_within_hour": 0,
        "action_within_hour": 0, "median_receipt_s": None, "median_action_s": None, "slowest_receipt_s": None,
        "slowest_action_s": None, "items": items,
    }  # fmt: skip


def make_report(title: str = "Drill <b>&</b> co") -> Report:
    """Two indicators shared at 10 s (wall); at x60 `fast` answers in 1 min, acts in 5; `slow` 40, 70."""
    crisis = {
        "id": "c-1", "title": title, "mode": "exercise", "status": "closed", "level": 2, "tlp": "amber",
        "created_by": "hub", "created_at": at(0), "updated_at": at(100), "version": 4,
    }  # fmt: skip
    timeline = [
        {"time": at(0), "type": "crisis.activated", "event_id": "e1", "org": "hub",
         "summary": "new -> activated (level 2)", "status": "activated", "level": 2},
        {"time": at(10), "type": "indicator.shared", "event_id": "i1", "org": "bka", "summary": "sha256"},
        {"time": at(10), "type": "indicator.shared", "event_id": "i2", "org": "bka", "summary": "url"},
        {"time": at(30), "type": "crisis.level_changed", "event_id": "e2", "org": "hub",
         "summary": "activated -> activated (level 3)", "status": "activated", "level": 3},
        {"time": at(90), "type": "crisis.concluded", "event_id": "e3", "org": "hub",
         "summary": "activated -> concluded", "status": "concluded"},
        {"time": at(100), "type": "crisis.closed", "event_id": "e4", "org": "hub",
         "summary": "concluded -> closed", "status": "closed"},
    ]  # fmt: skip
    indicators = [
        {"indicator_id": i, "kind": k, "canonical": c, "shared_at": at(10), "shared_by": "bka",
         "sightings": [], "retracted": False}
        for i, k, c in (("i1", "sha256", "ab" * 32), ("i2", "url", "https://x.example/<script>"))
    ]  # fmt: skip
    providers = [
        _provider("fast", [_item("i1", 10, 1, 5), _item("i2", 10, 1, 5)]),
        _provider("slow", [_item("i1", 10, 40, 70), _item("i2", 10, 40, None)]),
    ]
    return Report.model_validate(
        {"crisis": crisis, "generated_at": at(120), "timeline": timeline, "indicators": indicators,
         "providers": providers}
    )  # fmt: skip


def expectations() -> list[Expectation]:
    return [Expectation(org, i, 900.0, 3600.0) for org in ("fast", "slow", "absent") for i in ("i1", "i2")]


def test_figures_are_scaled_to_exercise_time() -> None:
    d = Debrief(make_report(), speed=SPEED)
    fast, slow = d.providers
    assert (fast.median_receipt_s, fast.median_action_s) == (60.0, 300.0)
    assert (slow.median_receipt_s, slow.slowest_action_s) == (2400.0, 4200.0)
    assert (slow.receipt_within_hour, slow.action_within_hour, slow.actioned) == (2, 0, 1)
    assert d.offset(T0 + timedelta(seconds=10)) == 600.0


def test_missed_deadlines_from_expectations_and_from_the_one_hour_rule() -> None:
    d = Debrief(make_report(), speed=SPEED, expectations=expectations())
    missed = sorted((m.provider, m.indicator_id, m.what, m.actual_s) for m in d.misses)
    assert missed == [
        ("absent", "i1", "action", None), ("absent", "i1", "receipt", None),
        ("absent", "i2", "action", None), ("absent", "i2", "receipt", None),
        ("slow", "i1", "action", 4200.0), ("slow", "i1", "receipt", 2400.0),
        ("slow", "i2", "action", None), ("slow", "i2", "receipt", 2400.0),
    ]  # fmt: skip
    live = Debrief(make_report())  # a live debrief at real time: only the action never taken is late
    assert [(m.provider, m.indicator_id, m.actual_s) for m in live.misses] == [("slow", "i2", None)]
    assert [(m.provider, m.what) for m in Debrief(make_report(), speed=SPEED).misses] == [
        ("slow", "action"),
        ("slow", "action"),
    ]


def test_markdown_says_how_times_are_scaled() -> None:
    text = report.to_markdown(
        Debrief(make_report(), speed=SPEED, expectations=expectations(), scenario="Drill")
    )
    assert text.startswith("# After-action report: Drill")
    assert "EXERCISE" in text
    assert "wall-clock x 60" in text
    assert "| fast | 2 | 2 | 2 | 2 | 2 | 1 min (wall 1.0 s) | 5 min (wall 5.0 s) |" in text
    assert "- deadlines missed: **8**" in text
    assert "| slow | i2 | action | 1 h 00 min | never |" in text
    plain = report.to_markdown(Debrief(make_report()))
    assert "x 60" not in plain and "Times are wall-clock, from the event log" in plain


def test_html_is_one_self_contained_file_with_four_plots() -> None:
    page = report.to_html(Debrief(make_report(), speed=SPEED, expectations=expectations()))
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(svgs) == 4
    for picture in svgs:
        ET.fromstring(picture)  # noqa: S314 - our own output, parsed to show it is well-formed
    assert "<script" not in page.replace("&lt;script", "")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "Drill &lt;b&gt;&amp;&lt;/b&gt; co" in page
    assert "one hour" in svgs[1]  # the one-hour line on the provider plot
    assert "exercise time" in svgs[0]


def test_plot_contents() -> None:
    d = Debrief(make_report(), speed=SPEED)
    timeline = plots.crisis_timeline(d)
    assert timeline.count("<rect") >= 4  # activated 2, activated 3, concluded, closed
    times = plots.provider_times(d)
    assert times.count("<circle") == 7 + 2  # 4 receipts, 3 actions, and the legend
    assert "1 no action" in times
    assert "(2)" in plots.indicators_over_time(d)
    assert "2 of 2 missed (0 receipt, 2 action)" in plots.deadlines_missed(d)


def test_time_ticks_are_readable() -> None:
    assert svg.time_ticks(7200) == [0, 1800, 3600, 5400, 7200]
    assert svg.time_ticks(100) == [0, 30, 60, 90, 120]
    assert svg.tick_label(5400) == "01:30:00" and svg.tick_label(90) == "01:30"


def test_write_and_the_report_command(tmp_path: Path) -> None:
    d = Debrief(make_report(), speed=SPEED, scenario="Drill")
    paths = report.write(d, tmp_path / "out", "drill")
    assert [p.name for p in paths] == ["drill.html", "drill.md", "drill.json"]
    saved = json.loads(paths[2].read_text())
    assert Report.model_validate(saved["report"]) == make_report()
    assert saved["exercise"]["speed"] == SPEED and saved["exercise"]["misses"]
    code = main(
        ["exercise", "report", "--from-json", str(paths[2]), "--speed", "60", "--report-dir", str(tmp_path)]
    )
    assert code == 0
    assert "wall-clock x 60" in (tmp_path / "crisis-c-1.md").read_text()


def test_the_check_command(tmp_path: Path, capsys: Any) -> None:
    examples = Path(__file__).parents[2] / "examples" / "scenarios"
    assert main(["exercise", "check", str(examples / "live-stream-attack.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nparticipants: []\ntimeline: []\n")
    assert main(["exercise", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: participants: List should have at least 1 item" in err


def test_simulated_delays_sit_beside_their_measurement() -> None:
    plans = [
        Plan("fast", "i1", True, 60.0, 300.0, "removed"),
        Plan("fast", "i2", True, 61.0, 299.0, "removed"),
    ]
    d = Debrief(make_report(), speed=SPEED, plans=plans)
    [check] = figures.simulation_check(d)
    assert (check.answers, check.measured_receipt_s, check.largest_gap_s) == (4, 60.0, 1.0)
    text = report.to_markdown(d)
    assert "| fast | 4 | 1 min | 1 min | 5 min | 5 min | 1.0 s (17 ms wall) |" in text
    again = report.from_json(json.loads(json.dumps(report.to_json(d))))
    assert again.plans == plans and again.speed == SPEED


def test_the_progress_view_shows_injects_acks_and_the_next_inject() -> None:
    scenario = parse(FAST, Path("drill.yaml")).scenario
    state = RunState(total=len(scenario.timeline), speed=60, done=2, next_step=scenario.timeline[2])
    state.acks.update({"received": 5, "removed": 3})
    console = Console(record=True, width=100)
    console.print(Dashboard(state, scenario.name))
    text = console.export_text()
    assert "preparing" in text
    state.playing = True
    console.print(Dashboard(state, scenario.name))
    text = console.export_text()
    assert "2/5" in text and "5 received, 3 actions (removed 3)" in text
    assert "change_level at 00:02:00, in 00:0" in text and "EXERCISE x60" in text


def test_markdown_reports_escape_html() -> None:
    hostile = 'Drill <img src=x onerror="alert(1)"> & <script>steal()</script>'
    for text in (
        report.to_markdown(Debrief(make_report(hostile), scenario=None)),
        render_markdown(make_report(hostile)),
    ):
        assert "<img" not in text and "<script" not in text
        assert "&lt;img src=x" in text and "&lt;script&gt;steal()&lt;/script&gt;" in text


def test_report_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "drill.md").write_text("an older, world-readable copy")
    (out / "drill.md").chmod(0o644)
    for path in report.write(Debrief(make_report(), speed=SPEED), out, "drill"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert "older" not in (out / "drill.md").read_text()


def test_html_fits_the_page_aligns_figures_only_and_shows_answers_and_notes() -> None:
    built = make_report()
    noted = TimelineEntry.model_validate(
        {"time": at(20), "type": "action.reported", "event_id": "a1", "org": "slow",
         "summary": "slow: removed for i1", "note": "2 mirrors <also> gone"}
    )  # fmt: skip
    built = built.model_copy(update={"timeline": [*built.timeline, noted]})
    page = report.to_html(Debrief(built, speed=SPEED))
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "@media print" in page
    assert page.count('<div class="wide"><table>') == page.count("<table>")  # every table scrolls alone
    # A note that starts with a digit is text, not a figure; the provider figures are figures.
    assert "<td>2 mirrors &lt;also&gt; gone</td>" in page
    assert '<td class="n">2</td>' in page
    # The matrix: one row per indicator, one column per provider, delays in exercise time.
    assert "<th>indicator</th><th>fast</th><th>slow</th>" in page
    assert "<td>i2</td><td>removed 5 min</td><td>received 40 min</td>" in page
    text = report.to_markdown(Debrief(built, speed=SPEED))
    assert "| i1 | removed 5 min | removed 1 h 10 min |" in text
    assert "| slow | slow: removed for i1 | 2 mirrors &lt;also&gt; gone |" in text
