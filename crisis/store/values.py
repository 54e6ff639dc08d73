"""Which indicator values a store's file may hold: a Bloom filter of fixed size, so that sharing a value never
seen before (the common case) costs no query. Kept in memory only: rebuilt from the file by the writer thread
once the process has caught up with the log, and until then every value counts as possibly held.

The scan is put off until then because it runs Python for each row (~5 µs; seconds at a million
indicators) and holds the interpreter lock meanwhile: started at once, it slowed a start by as much."""

from __future__ import annotations

import sqlite3
from concurrent.futures import Future

Value = tuple[str, str, str]  # crisis, kind, canonical

# 2^25 bits (4 MiB): with three bits a value, one unseen value in 1,500 costs a query at a million values,
# one in five at ten million; never a wrong answer.
_BITS = 1 << 25
_MASK = _BITS - 1


def _positions(value: Value) -> tuple[int, int, int]:
    # The interpreter's string hash: salted per process, which is all a filter kept in memory needs.
    h = hash(value) & 0xFFFF_FFFF_FFFF_FFFF
    return h & _MASK, (h >> 26) & _MASK, ((h >> 52) ^ (h * 0x9E37_79B9)) & _MASK


def _set(bits: bytearray, value: Value) -> None:
    for p in _positions(value):
        bits[p >> 3] |= 1 << (p & 7)


def scan(db: sqlite3.Connection) -> bytearray | None:
    """The filter of every live value in the file (run on the writer thread); None when there is none.
    `_positions` and `_set` written out in the loop: their calls cost a fifth of the scan (4.9 s at 1M)."""
    rows = db.execute(
        "SELECT crisis, kind, canonical FROM indicators INDEXED BY indicators_value WHERE retracted = 0"
    )
    bits = bytearray(_BITS // 8)
    found = False
    for row in rows:
        found = True
        h = hash(row) & 0xFFFF_FFFF_FFFF_FFFF
        a, b, c = h & _MASK, (h >> 26) & _MASK, ((h >> 52) ^ (h * 0x9E37_79B9)) & _MASK
        bits[a >> 3] |= 1 << (a & 7)
        bits[b >> 3] |= 1 << (b & 7)
        bits[c >> 3] |= 1 << (c & 7)
    return bits if found else None


def _has(bits: bytearray, positions: tuple[int, int, int]) -> bool:
    return all(bits[p >> 3] & (1 << (p & 7)) for p in positions)


class Values:
    """Two filters: what the file held at the start (built by the writer thread, which alone writes it)
    and what this process has shared since (written by the event loop alone). `empty`: the file held no
    indicator at the start, so there is nothing to scan."""

    def __init__(self, *, empty: bool) -> None:
        self._added = bytearray(_BITS // 8)
        self._scanning: Future[bytearray | None] | None = None
        self._known = empty  # whether the file's values at the start are in `_held`
        self._held: bytearray | None = None

    def scan(self, scanning: Future[bytearray | None]) -> None:
        """Take the filter of the file's values from `scanning` once it is done (crisis.store.values.scan)."""
        if not self._known and self._scanning is None:
            self._scanning = scanning

    @property
    def scanned(self) -> bool:
        return self._known

    def add(self, value: Value) -> None:
        _set(self._added, value)

    def may_hold(self, value: Value) -> bool:
        if not self._known:
            if self._scanning is None or not self._scanning.done():
                return True
            self._held, self._scanning, self._known = self._scanning.result(), None, True
        positions = _positions(value)
        return _has(self._added, positions) or (self._held is not None and _has(self._held, positions))
