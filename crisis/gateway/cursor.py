"""Resume cursors: a consistent cut of every partition, compact enough for a close reason.

A cursor is the per-partition next-offset vector as it stood right after one event in a gateway's read
order, tagged with a fingerprint of the cluster and topic it belongs to. It must be a vector: two gateways
interleave partitions differently, so no single offset names the same cut on both.

Wire form (version 1), base64url without padding:
    version (1 byte) | origin fingerprint (6 bytes) | partition count (uvarint) | next offsets (uvarint each)
Six partitions at offsets near a million take 32 characters; a close reason allows 123 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

VERSION: Final = 1
ORIGIN_BYTES: Final = 6
# A cursor names at most this many partitions: bounds decoding work on untrusted input.
MAX_PARTITIONS: Final = 10_000
MAX_CHARS: Final = 4 * (1 + ORIGIN_BYTES + 10 * (MAX_PARTITIONS + 1)) // 3 + 4


class CursorError(ValueError):
    """The text is not a cursor this gateway can read."""


def origin(cluster_id: str, topic: str) -> bytes:
    """The fingerprint of one log: a cursor from another cluster or topic is recognised, not misread."""
    return hashlib.sha256(f"{cluster_id}\x00{topic}".encode()).digest()[:ORIGIN_BYTES]


@dataclass(frozen=True, slots=True)
class Cursor:
    origin: bytes
    offsets: tuple[int, ...]

    def next_offset(self, partition: int) -> int:
        """Where this cut continues on `partition`; 0 for a partition the cursor does not name."""
        return self.offsets[partition] if partition < len(self.offsets) else 0


def encode(origin_: bytes, offsets: Sequence[int]) -> str:
    out = bytearray((VERSION,))
    out += origin_
    _uvarint(len(offsets), out)
    for offset in offsets:
        _uvarint(offset, out)
    return base64.urlsafe_b64encode(out).rstrip(b"=").decode("ascii")


def decode(text: str) -> Cursor:
    if not text or len(text) > MAX_CHARS:
        raise CursorError("the cursor is empty or too long")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CursorError("the cursor is not base64url") from exc
    if len(raw) < 1 + ORIGIN_BYTES + 1 or raw[0] != VERSION:
        raise CursorError("the cursor has an unknown version or is truncated")
    pos = 1 + ORIGIN_BYTES
    count, pos = _read_uvarint(raw, pos)
    if count > MAX_PARTITIONS:
        raise CursorError("the cursor names too many partitions")
    offsets = []
    for _ in range(count):
        value, pos = _read_uvarint(raw, pos)
        offsets.append(value)
    if pos != len(raw):
        raise CursorError("the cursor has trailing bytes")
    return Cursor(bytes(raw[1 : 1 + ORIGIN_BYTES]), tuple(offsets))


def _uvarint(value: int, out: bytearray) -> None:
    if value < 0:
        raise ValueError("offsets are never negative")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _read_uvarint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(raw) or shift > 63:
            raise CursorError("the cursor is truncated or malformed")
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
