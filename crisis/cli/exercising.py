"""What `crisis exercise run|report` do (loaded only when one of them runs)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading

from pydantic import ValidationError
from rich.console import Console
from rich.live import Live

from crisis.cli import output
from crisis.cli.errors import CliError
from crisis.cli.exercise import file_policy
from crisis.cli.files import read_text
from crisis.config import Settings
from crisis.domain.report import Report
from crisis.endpoints import api_url, stream_url
from crisis.exercise import report as reports
from crisis.exercise.api import Api, ApiError
from crisis.exercise.errors import ScenarioError
from crisis.exercise.figures import Debrief
from crisis.exercise.loading import load
from crisis.exercise.play import Played, play, prepare
from crisis.exercise.progress import Dashboard
from crisis.exercise.stream import StreamError


async def _run_live(args: argparse.Namespace, console: Console) -> Played:
    loaded = load(args.scenario, file_policy(args))
    runner = prepare(
        loaded,
        api_url=api_url(args.api),
        stream_url=stream_url(args.stream),
        speed=args.speed,
        keys_file=args.keys_file or Settings().keys_file,
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


def run(args: argparse.Namespace) -> int:
    output.for_client_command()
    console = Console(stderr=True)
    try:
        played = asyncio.run(_run_live(args, console))
    except ScenarioError as exc:
        console.print(str(exc), markup=False, highlight=False)
        console.print("nothing was published.")
        return 2
    except (ApiError, StreamError) as exc:
        console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
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


async def _fetch(args: argparse.Namespace) -> Report:
    api = Api(api_url(args.api))
    try:
        return await api.report(args.key, args.crisis)
    finally:
        await api.aclose()


def report(args: argparse.Namespace) -> int:
    """The same report for any crisis, live or exercise: from the API, or from a saved JSON."""
    output.for_client_command()
    try:
        if args.from_json:
            text = read_text(args.from_json, "report JSON")
            try:
                raw = json.loads(text)
            except ValueError as exc:
                raise CliError(f"{args.from_json}: not JSON ({exc.args[0].split(':')[0]})") from None
            debrief = reports.from_json(raw, args.speed)
        else:
            if not (args.crisis and args.key):
                print("error: give a crisis id and --key, or --from-json", file=sys.stderr)
                return 2
            debrief = Debrief(report=asyncio.run(_fetch(args)), speed=args.speed or 1.0)
    except ValidationError as exc:
        # Field names only: pydantic's own message quotes the values it refused.
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:3])
        print(f"error: {args.from_json or 'the API'}: not a crisis report (check {where})", file=sys.stderr)
        return 1
    except (OSError, ValueError, ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stem = args.name or f"crisis-{debrief.report.crisis.id[:8]}"
    for path in reports.write(debrief, args.report_dir, stem):
        print(path)
    return 0
