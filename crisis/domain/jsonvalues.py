"""Which JSON values orjson writes and reads exactly as the standard library's json module does.

orjson (a pure serialisation library: allowed in the domain like pydantic) writes str, int, bool, None, dict
and list byte for byte as `json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` does,
escapes included, at a tenth of the cost. It differs elsewhere: floats in their shortest form (`1e16`, not
`1e+16`; NaN and Infinity as `null`), ints beyond 64 bits refused when writing and read back as floats,
enums, UUIDs and other types json refuses written anyway. Callers use orjson for values `exact()` accepts and
json for the rest (and for what orjson refuses: big ints, keys that are not str, lone surrogates), so what
they produce never differs from json's.
"""

from __future__ import annotations

from typing import Any, Final, cast

# Exact types only: a subclass (an enum, a bool-like int) may be written differently by the two libraries.
_SCALARS: Final = frozenset((str, int, bool, type(None)))


def exact(value: object) -> bool:
    """Whether `value` is built of exact dict, list, tuple, str, int, bool and None only (no float)."""
    kind = type(value)
    if kind is dict:
        for item in cast("dict[Any, object]", value).values():
            if type(item) not in _SCALARS and not exact(item):
                return False
        return True
    if kind is list or kind is tuple:
        for item in cast("list[object]", value):
            if type(item) not in _SCALARS and not exact(item):
                return False
        return True
    return kind in _SCALARS
