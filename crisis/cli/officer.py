"""Duty-officer commands over the HTTP API: declare, transition, share, ack, status, report."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from crisis.domain.enums import ActionOutcome, ActivationCriterion, Status, Tlp

DEFAULT_API = "http://127.0.0.1:8000"
RETRIES = 3  # a 503 (broker unavailable, outcome unknown) is retried with the same Idempotency-Key


class CliError(Exception):
    """A failure to report on stderr; the command exits 1."""


def _problem_text(response: httpx.Response) -> str:
    """The problem+json body as one readable message, with per-field errors."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}: {str(body)[:300]}"
    text = f"{body.get('title', 'Error')} ({response.status_code}): {body.get('detail', '')}"
    for error in body.get("errors", [])[:10]:
        text += f"\n  {error.get('field') or '(body)'}: {error.get('message')}"
    if body.get("event_ids"):
        text += "\n  retrying with the same Idempotency-Key is safe: it never creates a second event"
    return text


class Api:
    """A thin client: bearer key, problem+json errors, retries of writes with a stable Idempotency-Key."""

    def __init__(self, url: str, key: str, timeout: float = 30.0) -> None:
        if not key:
            raise CliError("no API key: pass --key or set CRISIS_KEY (crisis keys add prints one)")
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout
        )

    def call(
        self, method: str, path: str, *, json_body: Any = None, accept: str | None = None
    ) -> httpx.Response:
        headers = {"Idempotency-Key": uuid.uuid4().hex} if method != "GET" else {}
        if accept:
            headers["Accept"] = accept
        for attempt in range(RETRIES):
            try:
                response = self.http.request(method, path, json=json_body, headers=headers)
            except httpx.TransportError as exc:
                if attempt + 1 == RETRIES:
                    raise CliError(f"cannot reach the API at {self.url}: {exc}") from exc
            else:
                if response.status_code != 503 or attempt + 1 == RETRIES:
                    break
            time.sleep(0.5 * (attempt + 1))
        if response.status_code >= 400:
            raise CliError(_problem_text(response))
        return response

    def close(self) -> None:
        self.http.close()


def _api(args: argparse.Namespace) -> Api:
    return Api(args.api, args.key)


def _print_crisis(crisis: dict[str, Any]) -> None:
    level = f" level {crisis['level']}" if crisis.get("level") else ""
    print(
        f"{crisis['id']}  {crisis['status']}{level}  v{crisis['version']}  {crisis['mode']}  "
        f"TLP:{str(crisis['tlp']).upper()}  {crisis['title']}"
    )


def _declare(args: argparse.Namespace, api: Api) -> None:
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
    crisis = api.call("POST", "/v1/crises", json_body=body).json()
    print(f"declared {crisis['status']} crisis (version {crisis['version']}):", file=sys.stderr)
    print(crisis["id"])  # alone on stdout, for scripts


def _transition(args: argparse.Namespace, api: Api) -> None:
    body: dict[str, Any] = {
        "to": args.to,
        "expected_version": args.expected_version,
        "criteria": args.criteria or [],
        "reason": args.reason,
    }
    if args.level is not None:
        body["level"] = args.level
    _print_crisis(api.call("POST", f"/v1/crises/{args.crisis_id}/transitions", json_body=body).json())


def parse_pair(text: str) -> dict[str, Any]:
    """`KIND:VALUE`, e.g. `sha256:ab12...` or `url:https://example.com/x` (split at the first colon)."""
    kind, sep, value = text.partition(":")
    if not sep or not kind or not value:
        raise CliError(f"'{text}' is not KIND:VALUE (e.g. sha256:<64 hex> or url:https://...)")
    return {"kind": kind.strip().lower(), "value": value.strip()}


def read_items(path: Path) -> Iterator[tuple[str, Any]]:
    """(source line, item) from a CSV with a `kind,value` header, or from JSON lines (one object a line)."""
    with path.open(newline="", encoding="utf-8") as fh:
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


def _share(args: argparse.Namespace, api: Api) -> None:
    items = [(f"argument {n}", parse_pair(p)) for n, p in enumerate(args.indicators, start=1)]
    if args.file:
        items += list(read_items(args.file))
    if not items:
        raise CliError("nothing to share: give KIND:VALUE arguments or --file")
    counts = {"created": 0, "sighting": 0, "rejected": 0}
    refused: list[str] = []
    extra: dict[str, Any] = {"tlp": args.tlp} if args.tlp else {}
    columns = (TextColumn("sharing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=None, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("share", total=len(items))
        for chunk in _chunks(items, args.batch):
            body = {"indicators": [item for _, item in chunk], **extra}
            result = api.call("POST", f"/v1/crises/{args.crisis_id}/indicators", json_body=body).json()
            for verdict in result["items"]:
                counts[verdict["status"]] += 1
                if verdict["status"] == "rejected":
                    error = verdict["error"]
                    where = f" ({error['field']})" if error.get("field") else ""
                    refused.append(f"{chunk[verdict['index']][0]}: {error['message']}{where}")
            bar.advance(task, len(chunk))
    print(f"created {counts['created']}, sighting {counts['sighting']}, rejected {counts['rejected']}")
    for line in refused:
        print(f"  rejected {line}")
    if counts["rejected"]:
        raise CliError(f"{counts['rejected']} of {len(items)} indicators were rejected")


def _ack(args: argparse.Namespace, api: Api) -> None:
    body = {"indicator_id": args.indicator_id, "outcome": args.outcome, "note": args.note}
    action = api.call("POST", f"/v1/crises/{args.crisis_id}/actions", json_body=body).json()
    who = f"{action['provider_org']} at {action['at']}"
    print(f"{action['outcome']} reported for {action['indicator_id']} by {who}")


def _status(args: argparse.Namespace, api: Api) -> None:
    if args.crisis_id:
        _print_crisis(api.call("GET", f"/v1/crises/{args.crisis_id}").json())
        return
    crises = api.call("GET", "/v1/crises").json()["items"]
    if not crises:
        print("no crises you may read")
    for crisis in crises:
        _print_crisis(crisis)


def _report(args: argparse.Namespace, api: Api) -> None:
    path = f"/v1/crises/{args.crisis_id}/report"
    if args.markdown:
        print(api.call("GET", path, accept="text/markdown").text, end="")
    else:
        print(json.dumps(api.call("GET", path).json(), indent=2))


def _runner(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            api = _api(args)
            try:
                command(args, api)
            finally:
                api.close()
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0

    return run


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", default=os.environ.get("CRISIS_API", DEFAULT_API), help="env CRISIS_API")
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
    share.add_argument("--file", type=Path, help="CSV with a kind,value header, or JSON lines")
    share.add_argument("--batch", type=int, default=1000, help="indicators per request (default 1000)")
    share.add_argument("--tlp", choices=tlps, help="default: the crisis's TLP")
    share.set_defaults(run=_runner(_share))

    ack = sub.add_parser("ack", parents=[common], help="report a provider's receipt or action")
    ack.add_argument("crisis_id")
    ack.add_argument("indicator_id")
    ack.add_argument("outcome", choices=[o.value for o in ActionOutcome])
    ack.add_argument("--note", default="")
    ack.set_defaults(run=_runner(_ack))

    status = sub.add_parser("status", parents=[common], help="list crises, or show one")
    status.add_argument("crisis_id", nargs="?")
    status.set_defaults(run=_runner(_status))

    report = sub.add_parser("report", parents=[common], help="the crisis report (JSON, or --markdown)")
    report.add_argument("crisis_id")
    report.add_argument("--markdown", action="store_true")
    report.set_defaults(run=_runner(_report))
