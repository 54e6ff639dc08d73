"""The after-action report: Markdown, a self-contained HTML page with inline SVG plots, and JSON.

Built from `GET /v1/crises/{id}/report` (the log), so a live crisis's debrief is the same document
without the exercise parts. Times in the log are wall-clock; a run at `--speed X` is read back in
exercise time by multiplying by X, and the report says so wherever it does.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any, Final

from crisis.domain.report import ProviderLine, Report, cell_text, matrix, notes
from crisis.exercise import plots
from crisis.exercise.deadlines import Expectation
from crisis.exercise.durations import clock, human
from crisis.exercise.figures import Debrief, simulation_check
from crisis.exercise.sampling import Plan

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.wide{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 7px}
td{overflow-wrap:anywhere;vertical-align:top}
th{background:#f4f4f4;text-align:left}td.n{text-align:right;white-space:nowrap}
.banner{background:#ffe08a;padding:.6em 1em;font-weight:bold;border:2px dashed #b58900}
.note{color:#555;font-size:.9em}code{font-size:.85em}
.headline{display:flex;gap:1em;flex-wrap:wrap}
.headline div{background:#f4f4f4;padding:.5em 1em;border-radius:4px}
.headline b{display:block;font-size:1.4em}svg{max-width:100%;height:auto}
@media (max-width:600px){body{margin:1em auto}table{font-size:.8em}td,th{padding:2px 4px}}
@media print{body{max-width:none;margin:0;padding:0;font-size:9pt}.wide{overflow:visible}
table{width:100%;font-size:8pt}thead{display:table-header-group}tr,svg{break-inside:avoid}
h2{break-after:avoid}th,.banner,.headline div{print-color-adjust:exact;-webkit-print-color-adjust:exact}}
"""


def _t(seconds: float | None, speed: float) -> str:
    """An exercise-time duration, with its wall-clock value when the run was sped up."""
    if seconds is None:
        return "-"
    return human(seconds) if speed == 1 else f"{human(seconds)} (wall {seconds / speed:.1f} s)"


def headline(d: Debrief) -> dict[str, str]:
    """The figures a reader wants first."""
    ps = d.providers
    received = sum(p.received for p in ps)
    actioned = sum(p.actioned for p in ps)
    due = sum(p.indicators for p in ps)
    return {
        "indicators shared": str(len(d.report.indicators)),
        "providers answering": str(len(ps)),
        "receipts within 1 h": f"{sum(p.receipt_within_hour for p in ps)} of {received} ({due} due)",
        "actions within 1 h": f"{sum(p.action_within_hour for p in ps)} of {actioned} ({due} due)",
        "deadlines missed": str(len(d.misses)),
    }


def _time_note(d: Debrief) -> str:
    if d.speed == 1:
        return "Times are wall-clock, from the event log (UTC)."
    return (
        f"Times are wall-clock from the event log (UTC). This exercise ran at speed x{d.speed:g}: "
        f"durations and offsets are shown in exercise time (wall-clock x {d.speed:g}), "
        "with the wall-clock value beside them."
    )


def _title(d: Debrief) -> str:
    if d.scenario:
        return f"After-action report: {d.scenario}"
    return f"Crisis debrief: {d.report.crisis.title}"


def _facts(d: Debrief) -> list[tuple[str, str]]:
    c = d.report.crisis
    times = [t.time for t in d.report.timeline]
    span = (max(times) - min(times)).total_seconds() if times else 0.0
    facts = [
        ("crisis", f"{c.title} ({c.id})"),
        ("mode", str(c.mode)),
        ("status", f"{c.status}" + (f", level {c.level}" if c.level else "")),
        ("TLP", str(c.tlp).upper()),
        ("first event", min(times).isoformat() if times else "-"),
        ("last event", max(times).isoformat() if times else "-"),
        ("duration", _t(span * d.speed, d.speed)),
        ("report generated", d.report.generated_at.isoformat()),
    ]
    if d.interrupted:
        facts.append(("run", "stopped by the controller before the last inject"))
    return facts


def _provider_rows(ps: list[ProviderLine], speed: float) -> list[list[str]]:
    return [
        [
            p.org,
            str(p.indicators),
            str(p.received),
            str(p.receipt_within_hour),
            str(p.actioned),
            str(p.action_within_hour),
            _t(p.median_receipt_s, speed),
            _t(p.median_action_s, speed),
            _t(p.slowest_receipt_s, speed),
            _t(p.slowest_action_s, speed),
        ]
        for p in ps
    ]


PROVIDER_HEAD = [
    "provider", "indicators", "received", "received ≤ 1 h", "actioned", "actioned ≤ 1 h",
    "median receipt", "median action", "slowest receipt", "slowest action",
]  # fmt: skip


# (title, header, rows, note, the indices of the columns that hold figures), shared by Markdown and HTML.
Table = tuple[str, list[str], list[list[str]], str, frozenset[int]]
NONE: Final = frozenset[int]()


def _tables(d: Debrief) -> list[Table]:
    """Every table of the report, in order."""
    misses = [
        [
            m.provider,
            m.indicator_id[:8],
            m.what,
            human(m.deadline_s),
            _t(m.actual_s, d.speed) if m.actual_s else "never",
        ]
        for m in sorted(d.misses, key=lambda m: m.provider)
    ]
    rule = "scenario expectations" if d.expectations is not None else "the one-hour rule (first action)"
    injects = [
        [clock(at), summary, sent.isoformat() if sent else "-", error or ("ok" if sent else "not sent")]
        for at, summary, sent, error in d.injects
    ]
    indicators = [
        [i.indicator_id[:8], str(i.kind), _short(i.canonical), clock(d.offset(i.shared_at)), i.shared_by,
         str(len(i.sightings)), "yes" if i.retracted else ""]
        for i in d.report.indicators
    ]  # fmt: skip
    timeline = [
        [t.time.isoformat(timespec="seconds"), clock(d.offset(t.time)), str(t.type), t.org, t.summary]
        for t in d.report.timeline
    ]
    since = "exercise clock" if d.origin is not None else "since opening"
    tables: list[Table] = [
        (
            "Providers",
            PROVIDER_HEAD,
            _provider_rows(d.providers, d.speed),
            "Times from each indicator's share.",
            frozenset(range(1, len(PROVIDER_HEAD))),
        ),
        _answers(d),
        (
            "Deadlines missed",
            ["provider", "indicator", "what", "deadline", "actual"],
            misses,
            f"Judged by {rule}.",
            frozenset({3, 4}),
        ),
        (
            "Action notes",
            ["wall clock (UTC)", since, "provider", "action", "note"],
            [
                [t.time.isoformat(timespec="seconds"), clock(d.offset(t.time)), t.org, t.summary, t.note]
                for t in notes(d.report)
            ],
            "What providers wrote beside their actions.",
            frozenset({1}),
        ),
    ]
    checks = [
        [c.org, str(c.answers), *(_t(v, 1) for v in (c.drawn_receipt_s, c.measured_receipt_s)),
         *(_t(v, 1) for v in (c.drawn_action_s, c.measured_action_s)), _gap(c.largest_gap_s, d.speed)]
        for c in simulation_check(d)
    ]  # fmt: skip
    if checks:
        head = ["provider", "answers", "drawn receipt", "measured", "drawn action", "measured", "largest gap"]
        note = (
            "What each simulated provider drew (medians, exercise time) beside what the log measured; "
            f"one wall-clock millisecond of latency is {d.speed / 1000:g} s of exercise time."
        )
        tables.append(("Simulated providers: drawn and measured", head, checks, note, frozenset(range(1, 7))))
    if injects:
        head = ["planned", "inject", "sent (wall clock)", "result"]
        note = "Planned times are exercise time from the scenario."
        tables.append(("Injects", head, injects, note, frozenset({0})))
    tables += [
        (
            "Indicators",
            ["id", "kind", "canonical", f"shared ({since})", "by", "sightings", "retracted"],
            indicators,
            "",
            frozenset({3, 5}),
        ),
        ("Timeline", ["wall clock (UTC)", since, "event", "org", "summary"], timeline, "", frozenset({1})),
    ]
    return tables


def _answers(d: Debrief) -> Table:
    """The provider x indicator matrix, delays in exercise time."""

    def delay(seconds: float | None) -> str:
        return "-" if seconds is None else human(seconds * d.speed)

    head = ["indicator", *(p.org for p in d.report.providers)]
    rows = [
        [indicator_id[:8], *(cell_text(c, delay) for c in cells)]
        for indicator_id, cells in matrix(d.report.providers, d.report.indicators)
    ]
    note = "Each provider's first action (else its receipt) and its delay from the share; "
    note += "'no answer': due and not answered; empty: not the provider's to act on."
    return ("Answers by indicator and provider", head, rows, note, NONE)


def _gap(seconds: float | None, speed: float) -> str:
    """Small differences need decimals: a few wall-clock milliseconds, times the speed factor."""
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" + (f" ({seconds / speed * 1000:.0f} ms wall)" if speed != 1 else "")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_markdown(d: Debrief) -> str:
    """Markdown in which nothing an organisation wrote can become HTML in a viewer."""
    lines = [f"# {_md(_title(d))}", ""]
    if d.is_exercise:
        lines += ["> **EXERCISE** - every event of this crisis is in exercise mode; not a live crisis.", ""]
    lines += [f"- {k}: {_md(v)}" for k, v in _facts(d)]
    lines += ["", f"_{_time_note(d)}_", "", "## Headline", ""]
    lines += [f"- {k}: **{v}**" for k, v in headline(d).items()]
    for title, head, rows, note, _numeric in _tables(d):
        lines += ["", f"## {title}", ""]
        if note:
            lines += [note, ""]
        if not rows:
            lines.append("None.")
            continue
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join("---" for _ in head) + "|")
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Titles, names and summaries come from organisations: `<script>` stays text, even in a viewer."""
    return escape(text, quote=False).replace("\n", " ")


def _cell(text: str) -> str:
    return _md(text).replace("|", "\\|")


def to_html(d: Debrief) -> str:
    """One file: inline CSS and SVG, no script, no external asset."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(_title(d))}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(_title(d))}</h1>",
    ]
    if d.is_exercise:
        parts.append('<p class="banner">EXERCISE - every event of this crisis is in exercise mode.</p>')
    parts.append(
        '<div class="wide"><table>'
        + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in _facts(d))
    )
    parts.append(f'</table></div><p class="note">{escape(_time_note(d))}</p><div class="headline">')
    parts += [f"<div><b>{escape(v)}</b>{escape(k)}</div>" for k, v in headline(d).items()]
    parts.append("</div>")
    parts += ["<h2>Crisis timeline</h2>", plots.crisis_timeline(d)]
    parts += ["<h2>Provider receipt and action times</h2>", plots.provider_times(d)]
    parts += ["<h2>Indicators shared over time</h2>", plots.indicators_over_time(d)]
    parts += ["<h2>Deadlines missed</h2>", plots.deadlines_missed(d)]
    for title, head, rows, note, numeric in _tables(d):
        parts.append(f"<h2>{escape(title)}</h2>" + (f'<p class="note">{escape(note)}</p>' if note else ""))
        parts.append(_html_table(head, rows, numeric) if rows else "<p>None.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_table(head: list[str], rows: list[list[str]], numeric: frozenset[int]) -> str:
    """A table in a scrolling box (it never widens the page); the caller says which columns are figures,
    so a title that starts with a digit is not right-aligned as one."""
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    classes = [' class="n"' if i in numeric else "" for i in range(len(head))]
    body = "".join(
        "<tr>" + "".join(f"<td{classes[i]}>{escape(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<div class="wide"><table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table></div>'


def to_json(d: Debrief) -> dict[str, Any]:
    """The API's report untouched, beside what the exercise adds (speed, expectations, misses, injects)."""
    return {
        "report": d.report.model_dump(mode="json"),
        "exercise": {
            "scenario": d.scenario,
            "speed": d.speed,
            "origin": d.origin.isoformat() if d.origin else None,
            "interrupted": d.interrupted,
            "time_note": _time_note(d),
            "headline": headline(d),
            "providers": [p.model_dump(mode="json", exclude={"items"}) for p in d.providers],
            "expectations": None if d.expectations is None else [asdict(e) for e in d.expectations],
            "misses": [asdict(m) for m in d.misses],
            "simulated": [asdict(p) for p in d.plans],
            "injects": [
                {"at_s": at, "inject": s, "sent_at": sent.isoformat() if sent else None, "error": err}
                for at, s, sent, err in d.injects
            ],
        },
    }


def from_json(raw: dict[str, Any], speed: float | None = None) -> Debrief:
    """A Debrief from `to_json` output (exercise parts restored) or from the API's bare report JSON."""
    if "report" not in raw:
        return Debrief(report=Report.model_validate(raw), speed=speed or 1.0)
    ex = raw.get("exercise") or {}
    expectations = ex.get("expectations")
    origin = ex.get("origin")
    return Debrief(
        report=Report.model_validate(raw["report"]),
        speed=speed or float(ex.get("speed") or 1.0),
        expectations=None if expectations is None else [Expectation(**e) for e in expectations],
        scenario=ex.get("scenario"),
        injects=[
            (
                i["at_s"],
                i["inject"],
                datetime.fromisoformat(i["sent_at"]) if i["sent_at"] else None,
                i["error"],
            )
            for i in ex.get("injects", [])
        ],
        interrupted=bool(ex.get("interrupted")),
        origin=datetime.fromisoformat(origin) if origin else None,
        plans=[Plan(**p) for p in ex.get("simulated", [])],
    )


def write(d: Debrief, directory: Path, stem: str) -> list[Path]:
    """`stem.html`, `stem.md` and `stem.json` in `directory`, readable by their owner only."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{stem}.{ext}" for ext in ("html", "md", "json")]
    _write_private(paths[0], to_html(d))
    _write_private(paths[1], to_markdown(d))
    _write_private(paths[2], json.dumps(to_json(d), indent=2, ensure_ascii=False) + "\n")
    return paths


def _write_private(path: Path, text: str) -> None:
    # A report names organisations and indicators of a TLP-marked crisis: mode 0600 from the first
    # byte (no window with the umask's mode), and an older, wider file is narrowed too.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(text)
