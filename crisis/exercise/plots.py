"""The report's four plots as inline SVG: crisis timeline, provider times, indicators over time, misses."""

from __future__ import annotations

from collections import Counter

from crisis.domain.report import TimelineEntry
from crisis.exercise import svg
from crisis.exercise.durations import clock, human
from crisis.exercise.figures import Debrief

WIDTH = 860
LEFT, RIGHT = 120, 24
STATUS_COLOURS = {
    "monitoring": "#8ab4d8",
    "activated 1": "#f5d76e",
    "activated 2": "#f0a04b",
    "activated 3": "#d9534f",
    "concluded": "#8cc68c",
    "closed": "#9a9a9a",
}
OUTCOME_COLOURS = {
    "received": "#1f77b4",
    "removed": "#2ca02c",
    "blocked": "#17becf",
    "not_found": "#7f7f7f",
    "disagree": "#ff7f0e",
    "no_action": "#bcbd22",
}
RECEIPT, ACTION, MISSED = "#1f77b4", "#2ca02c", "#d62728"


def axis_label(d: Debrief) -> str:
    if d.speed == 1:
        return f"time since {d.zero} (wall clock, h:mm:ss)"
    return f"exercise time since {d.zero} (wall clock x {d.speed:g}, h:mm:ss)"


def _status(entry: TimelineEntry) -> str | None:
    if entry.status is None:
        return None
    status = str(entry.status)
    return f"{status} {entry.level}" if status == "activated" and entry.level else status


def _span(d: Debrief) -> float:
    ends = [d.offset(t.time) for t in d.report.timeline]
    ends += [i.action_s * d.speed for p in d.report.providers for i in p.items if i.action_s is not None]
    return max([*ends, 60.0])


def crisis_timeline(d: Debrief) -> str:
    """Status bands, crisis events, indicator shares and provider answers on one time axis."""
    span = _span(d)
    x = svg.Scale(0, span, LEFT, WIDTH - RIGHT)
    out: list[str] = []
    rows = {"status": 58, "indicators": 98, "answers": 128}
    bottom = 150
    out += svg.time_axis(x, bottom, 20, span, axis_label(d))
    crisis_events = [t for t in d.report.timeline if t.type.is_crisis_state]
    for n, entry in enumerate(crisis_events):
        start = d.offset(entry.time)
        end = d.offset(crisis_events[n + 1].time) if n + 1 < len(crisis_events) else span
        status = _status(entry) or str(entry.type)
        colour = STATUS_COLOURS.get(status, "#ccc")
        tip = f"{clock(start)} {entry.summary}"
        out.append(svg.rect(x(start), rows["status"] - 11, x(end) - x(start), 22, colour, tip))
        out.append(svg.line(x(start), 24 + 12 * (n % 2), x(start), bottom, "#555", 'stroke-dasharray="2,2"'))
        label = _label(entry, status)
        # Labels near the right edge read leftwards so they stay inside the picture.
        right = x(start) > WIDTH - RIGHT - 120
        out.append(
            svg.text(x(start) + (-3 if right else 3), 32 + 12 * (n % 2), label, "end" if right else "start")
        )
    for entry in d.report.timeline:
        t = x(d.offset(entry.time))
        if entry.type.value == "indicator.shared":
            out.append(
                svg.line(t, rows["indicators"] - 9, t, rows["indicators"] + 9, "#6a3d9a", 'stroke-width="2"')
            )
    for p in d.report.providers:
        for item in p.items:
            for at, outcome in ((item.received_at, "received"), (item.first_action_at, item.first_action)):
                if at is not None and outcome is not None:
                    colour = OUTCOME_COLOURS.get(str(outcome), "#333")
                    tip = f"{p.org} {outcome} at {clock(d.offset(at))}"
                    out.append(svg.circle(x(d.offset(at)), rows["answers"], 3, colour, colour, tip))
    for name, y in rows.items():
        out.append(svg.text(LEFT - 8, y + 4, {"answers": "provider answers"}.get(name, name), "end"))
    used = {_status(e) for e in crisis_events}
    statuses = [(name, c, "rect") for name, c in STATUS_COLOURS.items() if name in used]
    answered = {
        str(o) for p in d.report.providers for i in p.items for o in ("received", i.first_action) if o
    }
    outcomes = [(name, c, "dot") for name, c in OUTCOME_COLOURS.items() if name in answered]
    out += _legend(statuses, bottom + 48) + _legend(outcomes, bottom + 66)
    return svg.document(WIDTH, bottom + 80, out, "Crisis timeline")


def _label(entry: TimelineEntry, status: str) -> str:
    """`declared, level 2`, `level 3`, `concluded`: what a reader of the band needs."""
    name = entry.type.value.split(".")[1]
    level = status.removeprefix("activated ") if status.startswith("activated ") else ""
    if name == "opened":
        return f"opened ({status})"
    if name == "activated":
        return f"activated, level {level}" if level else "activated"
    if name == "level_changed":
        return f"level {level}"
    return name


def _legend(items: list[tuple[str, str, str]], y: float) -> list[str]:
    out: list[str] = []
    x = float(LEFT)
    for name, colour, shape in items:
        if shape == "rect":
            out.append(svg.rect(x, y - 6, 14, 10, colour))
        else:
            out.append(svg.circle(x + 6, y - 1, 3.5, colour, colour))
        out.append(svg.text(x + 18, y + 3, name.replace("_", " ").replace("activated ", "level ")))
        x += 26 + 7 * len(name)
    return out


def provider_times(d: Debrief) -> str:
    """Per provider: each indicator's receipt (ring) and first action (dot) against the one-hour line."""
    hour = float(d.report.one_hour_s)
    values = [
        v * d.speed
        for p in d.report.providers
        for i in p.items
        for v in (i.receipt_s, i.action_s)
        if v is not None
    ]
    span = max([hour * 1.15, *values]) * 1.04
    row = 34
    top = 20
    bottom = top + row * max(len(d.report.providers), 1) + 8
    x = svg.Scale(0, span, LEFT, WIDTH - RIGHT - 60)
    out = svg.time_axis(x, bottom, top, span, axis_label(d).replace(f"since {d.zero}", "from each share"))
    out.append(svg.line(x(hour), top - 6, x(hour), bottom, MISSED, 'stroke-width="2" stroke-dasharray="6,3"'))
    out.append(svg.text(x(hour) + 4, top + 2, "one hour", extra=f'fill="{MISSED}"'))
    for n, p in enumerate(d.report.providers):
        y = top + row * n + row / 2
        out.append(svg.text(LEFT - 8, y + 4, p.org, "end"))
        out.append(svg.line(LEFT, y, WIDTH - RIGHT - 60, y, "#f0f0f0"))
        never = 0
        for k, item in enumerate(p.items):
            dy = (k % 3 - 1) * 5  # spread overlapping points over three lanes
            if item.receipt_s is not None:
                tip = f"{p.org} received {item.indicator_id} after {human(item.receipt_s * d.speed)}"
                out.append(svg.circle(x(item.receipt_s * d.speed), y + dy, 3.5, "none", RECEIPT, tip))
            if item.action_s is not None:
                tip = (
                    f"{p.org} {item.first_action} {item.indicator_id} after {human(item.action_s * d.speed)}"
                )
                out.append(svg.circle(x(item.action_s * d.speed), y + dy, 3.5, ACTION, ACTION, tip))
            else:
                never += 1
        if never:
            out.append(svg.text(WIDTH - RIGHT - 54, y + 4, f"{never} no action", extra=f'fill="{MISSED}"'))
    legend = bottom + 46
    out += [
        svg.circle(LEFT, legend, 3.5, "none", RECEIPT),
        svg.text(LEFT + 8, legend + 4, "received"),
        svg.circle(LEFT + 90, legend, 3.5, ACTION, ACTION),
        svg.text(LEFT + 98, legend + 4, "first action"),
    ]
    return svg.document(WIDTH, legend + 14, out, "Provider receipt and action times")


def indicators_over_time(d: Debrief) -> str:
    """Cumulative indicators shared, receipts and first actions over time."""
    span = _span(d)
    shared = sorted(d.offset(i.shared_at) for i in d.report.indicators)
    receipts = sorted(d.offset(i.received_at) for p in d.report.providers for i in p.items if i.received_at)
    actions = sorted(
        d.offset(i.first_action_at) for p in d.report.providers for i in p.items if i.first_action_at
    )
    top_count = max(len(shared), len(receipts), len(actions), 1)
    top, bottom = 20, 200
    x = svg.Scale(0, span, LEFT, WIDTH - RIGHT)
    ticks = svg.count_ticks(top_count)
    y = svg.Scale(0, ticks[-1], bottom, top)
    out = svg.time_axis(x, bottom, top, span, axis_label(d))
    for c in ticks:
        out.append(svg.line(LEFT, y(c), WIDTH - RIGHT, y(c), "#eee"))
        out.append(svg.text(LEFT - 8, y(c) + 4, str(c), "end"))
    legend_y = bottom + 46
    for n, (name, times, colour) in enumerate(
        (
            ("indicators shared", shared, "#6a3d9a"),
            ("receipts", receipts, RECEIPT),
            ("first actions", actions, ACTION),
        )
    ):
        out.append(svg.path(_steps(times, x, y, span), colour))
        left = LEFT + 200 * n
        out.append(svg.line(left, legend_y, left + 18, legend_y, colour, 'stroke-width="3"'))
        out.append(svg.text(left + 24, legend_y + 4, f"{name} ({len(times)})"))
    return svg.document(WIDTH, legend_y + 14, out, "Indicators shared over time")


def _steps(times: list[float], x: svg.Scale, y: svg.Scale, span: float) -> list[tuple[float, float]]:
    points = [(x(0), y(0))]
    for n, t in enumerate(times, start=1):
        points += [(x(t), y(n - 1)), (x(t), y(n))]
    return [*points, (x(span), y(len(times)))]


def deadlines_missed(d: Debrief) -> str:
    """Per provider: deadlines it had (grey), those missed for receipt (blue) and for action (red)."""
    misses = d.misses
    expected = d.expectations
    due: Counter[str] = Counter()
    if expected is None:
        due.update({p.org: len(p.items) for p in d.report.providers})
    else:
        for e in expected:
            due[e.provider] += (e.receipt_within is not None) + (e.action_within is not None)
    receipt = Counter(m.provider for m in misses if m.what == "receipt")
    action = Counter(m.provider for m in misses if m.what == "action")
    orgs = sorted(set(due) | set(receipt) | set(action))
    row, top = 26, 16
    most = max([*(max(due[o], receipt[o] + action[o]) for o in orgs), 1])
    x = svg.Scale(0, most, LEFT, WIDTH - RIGHT - 220)
    out: list[str] = []
    for n, org in enumerate(orgs):
        y = top + row * n
        r, a = receipt[org], action[org]
        out.append(svg.text(LEFT - 8, y + 13, org, "end"))
        out.append(svg.rect(LEFT, y + 3, x(due[org]) - LEFT, 16, "#e6e6e6", f"{org}: {due[org]} deadlines"))
        out.append(svg.rect(LEFT, y + 3, x(r) - LEFT, 16, RECEIPT, f"{org}: {r} receipt deadlines missed"))
        out.append(svg.rect(x(r), y + 3, x(r + a) - x(r), 16, MISSED, f"{org}: {a} action deadlines missed"))
        end = x(max(due[org], r + a))
        out.append(svg.text(end + 6, y + 15, f"{r + a} of {due[org]} missed ({r} receipt, {a} action)"))
    if not orgs:
        out.append(svg.text(LEFT, top + 14, "No deadlines: no provider was expected to answer."))
    height = top + row * max(len(orgs), 1) + 10
    return svg.document(WIDTH, height, out, "Deadlines missed per provider")
