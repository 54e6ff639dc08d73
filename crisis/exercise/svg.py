"""A few SVG primitives for the report's plots: no library, no external asset, no script."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from crisis.exercise.durations import clock

# Durations that make readable tick steps, in seconds.
_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True)
class Scale:
    """Linear map from data (lo..hi) to pixels (a..b)."""

    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.a + (value - self.lo) / span * (self.b - self.a)


def time_ticks(hi: float, count: int = 6) -> list[float]:
    """Tick positions from 0 to at least `hi` seconds, on a readable step."""
    target = max(hi, 1.0) / count
    step = next((s for s in _STEPS if s >= target), _STEPS[-1] * math.ceil(target / _STEPS[-1]))
    return [step * i for i in range(math.ceil(max(hi, 1.0) / step) + 1)]


def count_ticks(hi: int, count: int = 5) -> list[int]:
    """0 up to at least `hi` on a step of 1, 2 or 5 times a power of ten."""
    target = max(hi, 1) / count
    power = 10 ** max(0, math.floor(math.log10(target)))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= target)
    return list(range(0, max(hi, 1) + step, step))


def tick_label(seconds: float) -> str:
    """`0:45`, `1:30:00` style labels, shorter than a full clock."""
    text = clock(seconds)
    return text[3:] if text.startswith("00:") else text


def document(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def line(x1: float, y1: float, x2: float, y2: float, stroke: str = "#999", extra: str = "") -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" {extra}/>'


def rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "") -> str:
    if w <= 0:
        return ""  # an empty bar draws nothing; some renderers reject a zero width
    inner = f"<title>{escape(tip)}</title>" if tip else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" fill="{fill}">{inner}</rect>'
    )


def circle(x: float, y: float, r: float, fill: str, stroke: str, tip: str = "") -> str:
    inner = f"<title>{escape(tip)}</title>" if tip else ""
    return (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="1.5">{inner}</circle>'
    )


def text(x: float, y: float, value: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(value)}</text>'


def path(points: list[tuple[float, float]], stroke: str, width: float = 2) -> str:
    if not points:
        return ""
    d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<path d="{d}" fill="none" stroke="{stroke}" stroke-width="{width}"/>'


def time_axis(scale: Scale, y: float, top: float, hi: float, label: str) -> list[str]:
    """Grid lines and labels for a time axis along the bottom."""
    out = [line(scale.a, y, scale.b, y, "#444")]
    for t in (t for t in time_ticks(hi) if t <= hi * 1.001):
        x = scale(t)
        out.append(line(x, top, x, y, "#e3e3e3"))
        # The last label would overflow the picture if centred on the right edge.
        anchor = "end" if x > scale.b - 20 else "middle"
        out.append(text(x, y + 14, tick_label(t), anchor))
    out.append(text((scale.a + scale.b) / 2, y + 30, label, "middle", 'fill="#444"'))
    return out
