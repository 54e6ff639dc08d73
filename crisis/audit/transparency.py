"""The transparency report rendered: Markdown, and HTML with inline SVG bar charts (no script, no asset)."""

from __future__ import annotations

from html import escape

from crisis.domain.transparency import Transparency
from crisis.exercise import svg
from crisis.exercise.durations import human

WIDTH, LEFT, RIGHT, ROW = 640, 150, 60, 22
BAR = "#1f77b4"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else human(seconds)


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _period(t: Transparency) -> str:
    return f"{t.period_from.isoformat()} to {t.period_to.isoformat()}"


def _counts(values: dict[str, int]) -> list[list[str]]:
    return [[k, str(n)] for k, n in values.items()]


def _sections(t: Transparency) -> list[tuple[str, list[str], list[list[str]]]]:
    """Each table once, for both renderers: title, header, rows."""
    return [
        ("Crises by level", ["level", "crises"], _counts(t.crises_by_level)),
        (
            "Indicators by kind",
            ["kind", "indicators"],
            [[k, str(n)] for k, n in t.indicators_by_kind.items()],
        ),
        (
            "Providers",
            ["provider", "referrals", "removed", "removal rate", "median receipt", "median action"],
            [
                [
                    p.org,
                    str(p.referrals),
                    str(p.removed),
                    _rate(p.removal_rate),
                    _duration(p.median_receipt_s),
                    _duration(p.median_action_s),
                ]
                for p in t.providers
            ],
        ),
        ("Disputes", ["status", "disputes"], _counts(t.disputes)),
        ("Reads", ["organisation", "kind", "count"], [[r.org, r.kind.value, str(r.count)] for r in t.reads]),
    ]


def _summary(t: Transparency) -> list[str]:
    return [
        f"Crises: {t.crises}",
        f"Indicators: {t.indicators}",
        f"Median time to receipt: {_duration(t.median_receipt_s)}",
        f"Median time to action: {_duration(t.median_action_s)}",
        f"Erasures: {t.erasures}",
    ]


def render_markdown(t: Transparency) -> str:
    out = ["# Transparency report", "", f"**TLP:CLEAR** · {_period(t)}", ""]
    out += [f"- {line}" for line in _summary(t)]
    for title, header, rows in _sections(t):
        out += ["", f"## {title}", ""]
        if not rows:
            out.append("None.")
            continue
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join("---" for _ in header) + "|")
        out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def bars(title: str, values: dict[str, float], label: str = "{:g}") -> str:
    """A horizontal bar chart, one bar per key."""
    hi = max([*values.values(), 1.0])
    x = svg.Scale(0, hi, LEFT, WIDTH - RIGHT)
    body = []
    for n, (name, value) in enumerate(values.items()):
        y = 10 + n * ROW
        body.append(svg.text(LEFT - 8, y + 14, name, "end"))
        body.append(svg.rect(LEFT, y + 3, x(value) - LEFT, ROW - 6, BAR, f"{name}: {label.format(value)}"))
        body.append(svg.text(x(value) + 4, y + 14, label.format(value)))
    return svg.document(WIDTH, 20 + ROW * max(len(values), 1), body, title)


def render_html(t: Transparency) -> str:
    plots = [
        bars("Crises by level", {k: float(n) for k, n in t.crises_by_level.items()}),
        bars("Indicators by kind", {k: float(n) for k, n in t.indicators_by_kind.items()}),
        bars(
            "Removal rate per provider",
            {p.org: p.removal_rate for p in t.providers if p.removal_rate is not None},
            "{:.0%}",
        ),
    ]
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Transparency report</title>',
        "<style>body{font-family:sans-serif;max-width:900px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}</style>",
        "</head><body>",
        "<h1>Transparency report</h1>",
        f"<p><strong>TLP:CLEAR</strong> · {escape(_period(t))}</p>",
        "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in _summary(t)) + "</ul>",
        *plots,
    ]
    for title, header, rows in _sections(t):
        out.append(f"<h2>{escape(title)}</h2>")
        if not rows:
            out.append("<p>None.</p>")
            continue
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
