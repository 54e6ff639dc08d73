"""`crisis exercise run|check|report`: tabletop exercises on the real bus and their after-action report."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
from pathlib import Path

from rich.console import Console
from rich.live import Live

from crisis.config import Settings
from crisis.domain.report import Report
from crisis.exercise import report as reports
from crisis.exercise.api import Api, ApiError
from crisis.exercise.errors import ScenarioError
from crisis.exercise.figures import Debrief
from crisis.exercise.loading import load
from crisis.exercise.play import Played, play, prepare
from crisis.exercise.progress import Dashboard
from crisis.exercise.stream import StreamError


def _defaults() -> tuple[str, str, Path]:
    s = Settings()
    return (
        f"http://{s.api_host}:{s.api_port}",
        f"ws://{s.gateway_host}:{s.gateway_port}/v1/stream",
        s.keys_file,
    )


async def _run_live(args: argparse.Namespace, console: Console) -> Played:
    api_url, stream_url, keys_file = _defaults()
    loaded = load(args.scenario)
    runner = prepare(
        loaded,
        api_url=args.api or api_url,
        stream_url=args.stream or stream_url,
        speed=args.speed,
        keys_file=args.keys_file or keys_file,
        say=console.print,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def interrupt() -> None:
        # First Ctrl-C: stop injecting and write the report. Second: give up at once.
        if stop.is_set() and main is not None:
            main.cancel()
        console.print("[yellow]stopping: writing the report (Ctrl-C again to abandon)[/]")
        stop.set()

    # Only the main thread may take SIGINT (a test may run the command in a worker thread).
    handled = threading.current_thread() is threading.main_thread()
    if handled:
        loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        with Live(Dashboard(runner.state, loaded.scenario.name), console=console, refresh_per_second=4):
            return await play(runner, args.report_dir, stop)
    finally:
        if not console.is_terminal:
            console.line()  # Live leaves its last frame without a line end when not on a terminal
        if handled:
            loop.remove_signal_handler(signal.SIGINT)


def _run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        played = asyncio.run(_run_live(args, console))
    except ScenarioError as exc:
        console.print(str(exc), markup=False, highlight=False)
        console.print("nothing was published.")
        return 2
    except (ApiError, StreamError) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 1
    except asyncio.CancelledError:
        return 130
    return _summarise(played, console)


def _summarise(played: Played, console: Console) -> int:
    result = played.result
    console.print(f"crisis {result.crisis_id}: {sum(1 for i in result.injects if i.sent_at)} injects sent")
    for error in played.provider_errors[:5]:
        console.print(f"[yellow]simulated provider:[/] {error}")
    if played.debrief is not None:
        for name, value in reports.headline(played.debrief).items():
            console.print(f"  {name}: {value}")
    if result.report_error:
        console.print(f"[red]no report:[/] {result.report_error}")
    for path in played.paths:
        print(path)
    failed = any(i.error for i in result.injects) or result.report is None
    return 1 if failed else (130 if result.interrupted else 0)


def _check(args: argparse.Namespace) -> int:
    try:
        loaded = load(args.scenario)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2
    s = loaded.scenario
    count = sum(len(v) for v in loaded.shares.values())
    print(f"{args.scenario}: ok: {len(s.timeline)} steps over {s.duration_s / 60:g} min, {count} indicators")
    return 0


async def _fetch(args: argparse.Namespace) -> Report:
    api = Api(args.api or _defaults()[0])
    try:
        return await api.report(args.key, args.crisis)
    finally:
        await api.aclose()


def _report(args: argparse.Namespace) -> int:
    """The same report for any crisis, live or exercise: from the API, or from a saved JSON."""
    try:
        if args.from_json:
            debrief = reports.from_json(json.loads(args.from_json.read_text(encoding="utf-8")), args.speed)
        else:
            if not (args.crisis and args.key):
                print("error: give a crisis id and --key, or --from-json", file=sys.stderr)
                return 2
            debrief = Debrief(report=asyncio.run(_fetch(args)), speed=args.speed or 1.0)
    except (OSError, ValueError, ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stem = args.name or f"crisis-{debrief.report.crisis.id[:8]}"
    for path in reports.write(debrief, args.report_dir, stem):
        print(path)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    exercise = sub.add_parser("exercise", help="run tabletop exercises and write after-action reports")
    commands = exercise.add_subparsers(dest="exercise_command", required=True)

    run = commands.add_parser("run", help="play a scenario against the API and stream, in exercise mode")
    run.add_argument("scenario", type=Path)
    run.add_argument("--speed", type=float, help="speed factor: 60 plays two hours in two minutes")
    run.add_argument("--api", help="API base URL (default from CRISIS_API_HOST/PORT: http://127.0.0.1:8000)")
    run.add_argument("--stream", help="stream URL (default ws://127.0.0.1:8001/v1/stream)")
    run.add_argument(
        "--keys-file", type=Path, help="server keys file for generate_keys (default .crisis/keys.json)"
    )
    run.add_argument("--report-dir", type=Path, default=Path("exercise-reports"))
    run.set_defaults(run=_run)

    check = commands.add_parser("check", help="validate a scenario and the files it names; publishes nothing")
    check.add_argument("scenario", type=Path)
    check.set_defaults(run=_check)

    rep = commands.add_parser("report", help="write the report (HTML, Markdown, JSON) of any crisis")
    rep.add_argument("crisis", nargs="?", help="crisis id (with --key)")
    rep.add_argument("--key", help="an API key that may read the report")
    rep.add_argument("--api")
    rep.add_argument("--from-json", type=Path, help="a saved report JSON instead of the API")
    rep.add_argument("--speed", type=float, help="the speed factor it was played at (a saved exercise knows)")
    rep.add_argument("--name", help="file name stem")
    rep.add_argument("--report-dir", type=Path, default=Path("exercise-reports"))
    rep.set_defaults(run=_report)
