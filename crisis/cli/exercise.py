"""`crisis exercise run|check|report`: tabletop exercises on the real bus and their after-action report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from crisis.cli.lazy import lazy
from crisis.endpoints import API_URL_ENV, DEFAULT_API_URL, DEFAULT_STREAM_URL, STREAM_URL_ENV

if TYPE_CHECKING:
    from crisis.exercise.files import FilePolicy

MAX_FILE_BYTES_ENV = "CRISIS_EXERCISE_MAX_FILE_BYTES"  # read by crisis.exercise.files


def file_policy(args: argparse.Namespace) -> FilePolicy:
    """The folders and size limit the scenario's files are read under, from the command line."""
    from crisis.exercise.files import FilePolicy

    return FilePolicy.of(args.allow_path or (), args.max_file_bytes)


def _check(args: argparse.Namespace) -> int:
    """Validate without the runner: only the loader is imported, so a refusal comes at once."""
    from crisis.exercise.errors import ScenarioError
    from crisis.exercise.loading import load

    try:
        loaded = load(args.scenario, file_policy(args))
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2
    s = loaded.scenario
    count = sum(len(v) for v in loaded.shares.values())
    print(f"{args.scenario}: ok: {len(s.timeline)} steps over {s.duration_s / 60:g} min, {count} indicators")
    return 0


def _file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-path",
        type=Path,
        action="append",
        metavar="DIR",
        help="a folder besides the scenario's own that indicator and keys files may come from (repeatable)",
    )
    parser.add_argument(
        "--max-file-bytes",
        type=int,
        help=f"largest indicator or keys file read (env {MAX_FILE_BYTES_ENV}; default 16 MiB)",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    exercise = sub.add_parser("exercise", help="run tabletop exercises and write after-action reports")
    commands = exercise.add_subparsers(dest="exercise_command", required=True)

    run = commands.add_parser("run", help="play a scenario against the API and stream, in exercise mode")
    run.add_argument("scenario", type=Path)
    run.add_argument("--speed", type=float, help="speed factor: 60 plays two hours in two minutes")
    run.add_argument("--api", help=f"API base URL (env {API_URL_ENV}; default {DEFAULT_API_URL})")
    run.add_argument("--stream", help=f"stream URL (env {STREAM_URL_ENV}; default {DEFAULT_STREAM_URL})")
    run.add_argument(
        "--keys-file", type=Path, help="server keys file for generate_keys (default .crisis/keys.json)"
    )
    run.add_argument("--report-dir", type=Path, default=Path("exercise-reports"))
    _file_options(run)
    run.set_defaults(run=lazy("crisis.cli.exercising", "run"))

    check = commands.add_parser("check", help="validate a scenario and the files it names; publishes nothing")
    check.add_argument("scenario", type=Path)
    _file_options(check)
    check.set_defaults(run=_check)

    rep = commands.add_parser("report", help="write the report (HTML, Markdown, JSON) of any crisis")
    rep.add_argument("crisis", nargs="?", help="crisis id (with --key)")
    rep.add_argument("--key", help="an API key that may read the report")
    rep.add_argument("--api", help=f"API base URL (env {API_URL_ENV}; default {DEFAULT_API_URL})")
    rep.add_argument("--from-json", type=Path, help="a saved report JSON instead of the API")
    rep.add_argument("--speed", type=float, help="the speed factor it was played at (a saved exercise knows)")
    rep.add_argument("--name", help="file name stem")
    rep.add_argument("--report-dir", type=Path, default=Path("exercise-reports"))
    rep.set_defaults(run=lazy("crisis.cli.exercising", "report"))
