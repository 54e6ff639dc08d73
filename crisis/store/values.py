"""Which indicator values a store's file may hold: a Bloom filter of fixed size, so that sharing a value never
seen before (the common case) costs no query. Kept in memory only: rebuilt from the file by the writer thread
after a start, and until then every value counts as possibly held."""

from __future__ import annotations

import sqlite3
from concurrent.futures import Future

Value = tuple[str, str, str]  # crisis, kind, canonical

# 2^26 bits (8 MiB): with three bits a value, one in a thousand unseen values costs a query at 2.5 million
# values, one in twenty at ten million; never a wrong answer.
_BITS = 1 << 26
_MASK = _BITS - 1


def _positions(value: Value) -> tuple[int, int, int]:
    # The interpreter's string hash: salted per process, which is all a filter kept in memory needs.
    h = hash(value) & 0xFFFF_FFFF_FFFF_FFFF
    return h & _MASK, (h >> 26) & _MASK, ((h >> 52) ^ (h * 0x9E37_79B9)) & _MASK


def _set(bits: bytearray, value: Value) -> None:
    for p in _positions(value):
        bits[p >> 3] |= 1 << (p & 7)


def scan(db: sqlite3.Connection) -> bytearray:
    """The filter of every live value in the file (run on the writer thread)."""
    bits = bytearray(_BITS // 8)
    rows = db.execute(
        "SELECT crisis, kind, canonical FROM indicators INDEXED BY indicators_value WHERE retracted = 0"
    )
    for row in rows:
        _set(bits, row)
    return bits


class Values:
    def __init__(self, scanning: Future[bytearray] | None) -> None:
        """`scanning`: the filter of what the file holds, being built (None: the file is empty)."""
        self._bits = bytearray(_BITS // 8)
        self._scanning = scanning

    def add(self, value: Value) -> None:
        _set(self._bits, value)

    def may_hold(self, value: Value) -> bool:
        if self._scanning is not None:
            if not self._scanning.done():
                return True
            scanned = self._scanning.result()
            self._scanning = None
            merged = int.from_bytes(self._bits, "little") | int.from_bytes(scanned, "little")
            self._bits = bytearray(merged.to_bytes(len(self._bits), "little"))
        bits = self._bits
        return all(bits[p >> 3] & (1 << (p & 7)) for p in _positions(value))
