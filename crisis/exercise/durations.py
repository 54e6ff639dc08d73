"""Durations in scenarios: seconds, "HH:MM:SS", "MM:SS", or "90s" / "5m" / "2h"."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

_SUFFIX = re.compile(r"^(\d+(?:\.\d+)?)\s*([smh])$")
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(value: object) -> float:
    """Seconds from a number or a duration string; ValueError says which forms are accepted."""
    if isinstance(value, bool):
        raise ValueError("a duration is seconds or 'HH:MM:SS', not a boolean")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"a duration is seconds or 'HH:MM:SS', not {type(value).__name__}")
    text = value.strip()
    match = _SUFFIX.match(text)
    if match:
        return float(match.group(1)) * _UNITS[match.group(2)]
    parts = text.split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ValueError(
            f"'{value}' is not a duration: use seconds, 'HH:MM:SS', 'MM:SS' or 90s/5m/2h"
        ) from None
    if len(numbers) > 3 or any(n < 0 for n in numbers) or any(n >= 60 for n in numbers[1:]):
        raise ValueError(f"'{value}' is not a duration: use 'HH:MM:SS' with minutes and seconds below 60")
    seconds = 0.0
    for number in numbers:
        seconds = seconds * 60 + number
    return seconds


def clock(seconds: float) -> str:
    """`HH:MM:SS` (negative as `-HH:MM:SS`); rounds to the second."""
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds))
    return f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def human(seconds: float) -> str:
    """A short reading: `45 s`, `12 min 5 s`, `1 h 02 min`."""
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60} s" if total % 60 else f"{total // 60} min"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
