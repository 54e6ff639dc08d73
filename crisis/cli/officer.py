"""Duty-officer commands over the HTTP API: declare, transition, share, export, ack, status, report.

Everything goes through `crisis.client.Client` (the one retry policy); anything an organisation wrote is
shown through `printable`, so no control sequence from the bus reaches the officer's terminal.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crisis.cli import ids, output, status
from crisis.cli.errors import EXIT_PARTLY_REJECTED, CliError
from crisis.cli.files import read_text
from crisis.domain.enums import ActionOutcome, ActivationCriterion, Status, Tlp
from crisis.endpoints import API_URL_ENV
from crisis.terminal import printable

if TYPE_CHECKING:
    from crisis.client.http import Client

Command = Callable[[argparse.Namespace, "Client"], None]


def _api(args: argparse.Namespace) -> Client:
    from crisis.client.http import Client

    if not args.key:
        raise CliError("no API key: pass --key or set CRISIS_KEY (crisis keys add prints one)")
    return Client(args.api, args.key)


def crisis_line(crisis: dict[str, Any]) -> str:
    """One printable line per crisis: its title is the organisation's text, shown inert."""
    level = f" level {crisis.get('level')}" if crisis.get("level") else ""
    return printable(
        f"{crisis.get('id')}  {crisis.get('status')}{level}  v{crisis.get('version')}  {crisis.get('mode')}  "
        f"TLP:{str(crisis.get('tlp')).upper()}  {crisis.get('title')}"
    )


def _print_crisis(crisis: dict[str, Any]) -> None:
    print(crisis_line(crisis))


def _declare(args: argparse.Namespace, api: Client) -> None:
    body: dict[str, Any] = {
        "title": args.title,
        "summary": args.summary,
        "mode": "exercise" if args.exercise else "live",
        "status": Status.MONITORING if args.monitoring else Status.ACTIVATED,
        "criteria": args.criteria or [],
        "jurisdictions": args.jurisdiction or [],
        "tlp": args.tlp,
        "tlprecipients": args.recipient or [],
        "reason": args.reason,
    }
    if not args.monitoring:
        body["level"] = args.level
    crisis = api.post("/v1/crises", body)
    print(f"declared {crisis['status']} crisis (version {crisis['version']}):", file=sys.stderr)
    print(crisis["id"])  # alone on stdout, for scripts


def _transition(args: argparse.Namespace, api: Client) -> None:
    body: dict[str, Any] = {
        "to": args.to,
        "expected_version": args.expected_version,
        "criteria": args.criteria or [],
        "reason": args.reason,
    }
    if args.level is not None:
        body["level"] = args.level
    _print_crisis(api.post(f"/v1/crises/{args.crisis_id}/transitions", body))


def parse_pair(text: str) -> dict[str, Any]:
    """`KIND:VALUE`, e.g. `sha256:ab12...` or `url:https://example.com/x` (split at the first colon)."""
    kind, sep, value = text.partition(":")
    if not sep or not kind or not value:
        raise CliError(f"'{text}' is not KIND:VALUE (e.g. sha256:<64 hex> or url:https://...)")
    return {"kind": kind.strip().lower(), "value": value.strip()}


def read_items(path: Path) -> Iterator[tuple[str, Any]]:
    """(source line, item) from a CSV with a `kind,value` header, or from JSON lines (one object a line)."""
    with io.StringIO(read_text(path, "indicators file"), newline="") as fh:
        first = fh.readline()
        fh.seek(0)
        if first.lstrip().startswith("{"):
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        yield f"{path.name}:{number}", json.loads(line)
                    except ValueError as exc:
                        yield f"{path.name}:{number}", f"invalid JSON: {exc}"
            return
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"kind", "value"} <= set(reader.fieldnames):
            raise CliError(f"{path}: a CSV needs a 'kind,value' header (or use JSON lines)")
        for row in reader:
            yield (
                f"{path.name}:{reader.line_num}",
                {"kind": row["kind"].strip(), "value": row["value"].strip()},
            )


def _chunks(items: list[tuple[str, Any]], size: int) -> Iterator[list[tuple[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


FILE_FORMATS = ("auto", "stix", "misp", "hashes", "csv", "jsonl")


def _file_format(text: str) -> str:
    """The format of a file by its content: CSV by its kind,value header, else as crisis.interop tells."""
    from crisis.interop.formats import detect

    first = text.lstrip().split("\n", 1)[0].lower().replace(" ", "")
    if first.startswith("kind,") or ",kind," in first or first.endswith(",kind"):
        return "csv"
    found = detect(text)
    return str(found) if found is not None else "jsonl"


def read_file(path: Path, fmt: str, kind: str | None) -> tuple[list[tuple[str, Any]], list[str], Tlp | None]:
    """(source, item) pairs, what the file held that is no indicator here, and the file's own TLP label."""
    if fmt in ("csv", "jsonl") and kind:
        raise CliError("--kind is for hash lists")
    text = read_text(path, "indicators file")
    fmt = _file_format(text) if fmt == "auto" else fmt
    if fmt in ("csv", "jsonl"):
        return list(read_items(path)), [], None
    from crisis.domain.enums import IndicatorKind
    from crisis.interop.formats import Format, read

    try:
        found = read(text, Format(fmt), IndicatorKind(kind) if kind else None)
    except ValueError as exc:
        raise CliError(f"{path}: {exc}") from None
    items = [(f"{path.name} item {n}", item) for n, item in enumerate(found.items, start=1)]
    return items, [printable(f"{path.name}: {s}") for s in found.skipped], found.tlp


def _share(args: argparse.Namespace, api: Client) -> None:
    items = [(f"argument {n}", parse_pair(p)) for n, p in enumerate(args.indicators, start=1)]
    skipped: list[str] = []
    tlp = args.tlp
    if args.file:
        found, skipped, label = read_file(args.file, args.format, args.kind)
        items += found
        if tlp is None and label is not None:
            from crisis.interop.submissions import share_label

            tlp = share_label(label, Tlp(api.get(f"/v1/crises/{args.crisis_id}")["tlp"]))
    for line in skipped:
        print(f"  skipped {line}")
    if not items:
        raise CliError("nothing to share: give KIND:VALUE arguments or --file")
    counts = {"created": 0, "sighting": 0, "rejected": 0}
    refused: list[str] = []
    extra: dict[str, Any] = {"tlp": tlp} if tlp else {}
    if args.recipient:
        extra["tlprecipients"] = args.recipient
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("sharing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    sent = 0
    try:
        with Progress(*columns, console=None, transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("share", total=len(items))
            for chunk in _chunks(items, args.batch):
                body = {"indicators": [item for _, item in chunk], **extra}
                result = api.post(f"/v1/crises/{args.crisis_id}/indicators", body)
                for verdict in result["items"]:
                    counts[verdict["status"]] += 1
                    if verdict["status"] == "rejected":
                        error = verdict["error"]
                        where = f" ({error['field']})" if error.get("field") else ""
                        refused.append(printable(f"{chunk[verdict['index']][0]}: {error['message']}{where}"))
                sent += len(chunk)
                bar.advance(task, len(chunk))
    finally:
        # Also when a later batch fails: what the earlier batches did stands, and the officer must know it.
        if sent:
            _print_outcome(counts, refused, sent, len(items))
    rejected = counts["rejected"]
    if rejected or skipped:
        rest = len(items) - rejected
        stands = f"the other {rest} were shared" if rest else "nothing was shared"
        what = [f"{rejected} of {len(items)} indicators were rejected (listed on stdout)"] if rejected else []
        if skipped:
            what.append(f"{len(skipped)} entries of {args.file} were skipped (no indicator here)")
        raise CliError(f"{'; '.join(what)}; {stands}", exit_code=EXIT_PARTLY_REJECTED)


def _print_outcome(counts: dict[str, int], refused: list[str], sent: int, total: int) -> None:
    print(f"created {counts['created']}, sighting {counts['sighting']}, rejected {counts['rejected']}")
    for line in refused:
        print(f"  rejected {line}")
    if sent < total:
        print(f"stopped after {sent} of {total} indicators: the rest were not sent")


def _export(args: argparse.Namespace, api: Client) -> None:
    crisis = ids.crisis_id(api, args.crisis_id)
    response = api.request("GET", f"/v1/crises/{crisis}/{'misp' if args.misp else 'stix'}")
    if args.output:
        try:
            args.output.write_bytes(response.content)  # as the API wrote it
        except OSError as exc:
            raise CliError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        # ASCII-only JSON: no character an organisation wrote can act on the terminal.
        print(json.dumps(response.json(), indent=2, ensure_ascii=True))


def _ack(args: argparse.Namespace, api: Client) -> None:
    crisis = ids.crisis_id(api, args.crisis_id)
    indicator = ids.indicator_id(api, crisis, args.indicator_id)
    body = {"indicator_id": indicator, "outcome": args.outcome, "note": args.note}
    action = api.post(f"/v1/crises/{crisis}/actions", body)
    who = f"{action['provider_org']} at {action['at']}"
    print(printable(f"{action['outcome']} reported for {action['indicator_id']} by {who}"))


def _status(args: argparse.Namespace, api: Client) -> None:
    if not args.crisis_id:
        crises = list(api.pages("/v1/crises"))  # every page: the list is short, one line a crisis
        if args.json:
            print(json.dumps(crises, indent=2))
            return
        if not crises:
            print("no crises you may read")
        for crisis in crises:
            _print_crisis(crisis)
        return
    crisis_id = ids.crisis_id(api, args.crisis_id)
    summary = status.summary(api.get(f"/v1/crises/{crisis_id}"), _report_if_readable(api, crisis_id))
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    for line in status.lines(summary):
        print(printable(line))


def _report_if_readable(api: Client, crisis_id: str) -> dict[str, Any] | None:
    """The crisis's report, or None for a key whose role may not read it (an observer)."""
    from crisis.client.http import ApiError

    try:
        report: dict[str, Any] = api.get(f"/v1/crises/{crisis_id}/report")
    except ApiError as exc:
        if exc.status == 403:
            return None
        raise
    return report


def _report(args: argparse.Namespace, api: Client) -> None:
    path = f"/v1/crises/{args.crisis_id}/report"
    if args.markdown:
        print(printable(api.request("GET", path, accept="text/markdown").text, keep="\n\t"), end="")
    elif args.lines:
        # The summary, then every indicator, provider item and timeline entry as it arrives: a crisis of
        # any size is printed with one line in memory.
        print(json.dumps({"part": "summary", **api.get(f"{path}?view=summary")}))
        for line in api.lines(f"{path}/lines"):
            print(json.dumps(line))
    else:
        print(json.dumps(api.get(f"{path}?view=summary"), indent=2))


def _runner(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        output.for_client_command()
        with _api(args) as api:
            command(args, api)
        return 0

    return run


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", help=f"API base URL (env {API_URL_ENV}, default http://127.0.0.1:8000)")
    common.add_argument("--key", default=os.environ.get("CRISIS_KEY", ""), help="env CRISIS_KEY")
    return common


def _level(text: str) -> int:
    if text not in ("1", "2", "3"):
        raise argparse.ArgumentTypeError("level is 1, 2 or 3")
    return int(text)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = _common()
    criteria = [c.value for c in ActivationCriterion]
    tlps = [t.value for t in Tlp]

    declare = sub.add_parser("declare", parents=[common], help="declare a crisis (or open it as monitoring)")
    declare.add_argument("title")
    declare.add_argument("--level", type=_level, default=1, help="1..3 (default 1)")
    declare.add_argument("--criteria", nargs="+", choices=criteria, help="activation criteria met")
    declare.add_argument("--monitoring", action="store_true", help="open in monitoring, not activated")
    declare.add_argument("--exercise", action="store_true", help="an exercise crisis, never live")
    declare.add_argument("--tlp", choices=tlps, default="amber")
    declare.add_argument("--recipient", action="append", help="organisation for TLP red / amber+strict")
    declare.add_argument("--jurisdiction", action="append")
    declare.add_argument("--summary", default="")
    declare.add_argument("--reason", default="")
    declare.set_defaults(run=_runner(_declare))

    transition = sub.add_parser(
        "transition", parents=[common], help="activate, change level, conclude, close"
    )
    transition.add_argument("crisis_id")
    transition.add_argument("--to", required=True, choices=[s.value for s in Status])
    transition.add_argument("--expected-version", type=int, required=True, help="the version you last saw")
    transition.add_argument("--level", type=_level)
    transition.add_argument("--criteria", nargs="+", choices=criteria)
    transition.add_argument("--reason", default="")
    transition.set_defaults(run=_runner(_transition))

    share = sub.add_parser("share", parents=[common], help="share indicators (KIND:VALUE or --file)")
    share.add_argument("crisis_id")
    share.add_argument("indicators", nargs="*", metavar="KIND:VALUE")
    share.add_argument(
        "--file", type=Path, help="STIX 2.1 bundle, MISP event, hash list, CSV (kind,value) or JSON lines"
    )
    share.add_argument("--format", choices=FILE_FORMATS, default="auto", help="default: told by content")
    share.add_argument("--kind", choices=["md5", "sha1", "sha256", "sha512", "pdq"], help="a hash list's")
    share.add_argument("--batch", type=int, default=1000, help="indicators per request (default 1000)")
    share.add_argument("--tlp", choices=tlps, help="default: the crisis's TLP")
    share.add_argument(
        "--recipient", action="append", help="organisation for TLP red / amber+strict (repeatable)"
    )
    share.set_defaults(run=_runner(_share))

    export = sub.add_parser("export", parents=[common], help="a crisis as STIX 2.1 (default) or MISP")
    export.add_argument("crisis_id")
    shape = export.add_mutually_exclusive_group()
    shape.add_argument("--stix", action="store_true", help="a STIX 2.1 bundle (the default)")
    shape.add_argument("--misp", action="store_true", help="a MISP event")
    export.add_argument("--output", "-o", type=Path, help="write to this file (default: standard output)")
    export.set_defaults(run=_runner(_export))

    ack = sub.add_parser("ack", parents=[common], help="report a provider's receipt or action")
    ack.add_argument("crisis_id", help="a crisis id, or any unique prefix of one")
    ack.add_argument("indicator_id", help="an indicator id, or any unique prefix (as `crisis tail` shows)")
    ack.add_argument("outcome", choices=[o.value for o in ActionOutcome])
    ack.add_argument("--note", default="")
    ack.set_defaults(run=_runner(_ack))

    show = sub.add_parser("status", parents=[common], help="list crises, or show one in detail")
    show.add_argument("crisis_id", nargs="?", help="a crisis id, or any unique prefix of one")
    show.add_argument("--json", action="store_true", help="structured output for scripts")
    show.set_defaults(run=_runner(_status))

    report = sub.add_parser(
        "report", parents=[common], help="the crisis report (a JSON summary, --lines, or --markdown)"
    )
    report.add_argument("crisis_id")
    report.add_argument("--markdown", action="store_true")
    report.add_argument(
        "--lines", action="store_true", help="NDJSON: the summary, then every indicator, item and event"
    )
    report.set_defaults(run=_runner(_report))
