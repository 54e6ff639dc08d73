"""The embedded log on disk: every record the embedded broker acknowledged, fsynced, with its offset.

The embedded broker (Tansu, memory storage only) forgets everything when it stops. `crisis up` therefore
keeps a journal beside its keys: a record is appended here, and fsynced, after the broker acknowledged it
and before its writer hears success, so every acknowledged write survives a `kill -9`. At the next start,
the journal is replayed into the new, empty broker at the same offsets (holes, left by a write that was in
the broker but never made durable, are filled with filler records the readers skip), so saved cursors
resume exactly.

The journal also carries the log's identity: an id created once with it. Cursors carry that id, so a cursor
from another log (a wiped directory, another machine) is recognised and answered with a gap, never misread.

File layout: `log-id` (the id, text) and `events.journal`: entries of
    crc32 (4) | partition (4) | offset (8) | timestamp ms (8) | key length (4, -1: none) |
    value length (4) | headers length (4) | key | value |
    headers (count u16, then per header: name length u16, name, value length u32, value)
all little-endian; the CRC covers everything after it. A torn last entry (a crash mid-write) is cut off.
"""

from __future__ import annotations

import os
import struct
import threading
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

_ENTRY = struct.Struct("<IIqqiII")
_HEADER_COUNT = struct.Struct("<H")
_NAME_LEN = struct.Struct("<H")
_VALUE_LEN = struct.Struct("<I")
JOURNAL_FILE = "events.journal"
ID_FILE = "log-id"
# Header that marks a record written only to keep offsets where a journal has a hole.
FILLER_HEADER = "crisis_filler"


class JournalError(RuntimeError):
    """The journal cannot be read or written."""


@dataclass(frozen=True, slots=True)
class Entry:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def _pack(entry: Entry) -> bytes:
    headers = bytearray(_HEADER_COUNT.pack(len(entry.headers)))
    for name, value in entry.headers:
        raw = name.encode()
        headers += _NAME_LEN.pack(len(raw)) + raw + _VALUE_LEN.pack(len(value)) + value
    key = entry.key or b""
    key_len = -1 if entry.key is None else len(key)
    body = (
        _ENTRY.pack(
            0, entry.partition, entry.offset, entry.timestamp_ms, key_len, len(entry.value), len(headers)
        )[4:]
        + key
        + entry.value
        + bytes(headers)
    )
    return struct.pack("<I", zlib.crc32(body)) + body


def _unpack_headers(raw: bytes) -> tuple[tuple[str, bytes], ...]:
    (count,) = _HEADER_COUNT.unpack_from(raw, 0)
    pos = _HEADER_COUNT.size
    out = []
    for _ in range(count):
        (name_len,) = _NAME_LEN.unpack_from(raw, pos)
        pos += _NAME_LEN.size
        name = raw[pos : pos + name_len].decode()
        pos += name_len
        (value_len,) = _VALUE_LEN.unpack_from(raw, pos)
        pos += _VALUE_LEN.size
        out.append((name, raw[pos : pos + value_len]))
        pos += value_len
    return tuple(out)


class Journal:
    """One log directory. Appends are serialised and made durable (fsync) before `append` returns."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / JOURNAL_FILE
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.log_id = ""

    def open(self) -> Journal:
        """Create the directory and id on first use; cut a torn tail; open for appending."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.log_id = self._identity()
        good = self._valid_length()
        if self.path.exists() and self.path.stat().st_size > good:
            log.warning("journal_tail_cut", path=str(self.path), kept_bytes=good)
            with self.path.open("r+b") as f:
                f.truncate(good)
                os.fsync(f.fileno())
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _identity(self) -> str:
        id_path = self.directory / ID_FILE
        if id_path.exists():
            return id_path.read_text().strip()
        if self.path.exists() and self.path.stat().st_size:
            raise JournalError(f"{self.path} exists without {id_path}: refusing to give it a new identity")
        log_id = str(uuid.uuid4())
        tmp = id_path.with_suffix(".tmp")
        tmp.write_text(log_id + "\n")
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.replace(id_path)
        _fsync_dir(self.directory)
        return log_id

    def append(self, entries: Sequence[Entry]) -> None:
        """Write and fsync: once this returns, the entries survive a crash of this process or machine."""
        if self._fd is None:
            raise JournalError("the journal is not open")
        data = b"".join(_pack(e) for e in entries)
        with self._lock:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)

    def entries(self) -> Iterator[Entry]:
        """Every whole entry, in file order (which is offset order within each partition, mostly)."""
        for _, entry in self._scan():
            yield entry

    def _valid_length(self) -> int:
        end = 0
        for position, _ in self._scan():
            end = position
        return end

    def _scan(self) -> Iterator[tuple[int, Entry]]:
        """(end position, entry) for each whole entry; stops at the first torn or corrupt one."""
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            pos = 0
            while True:
                head = f.read(_ENTRY.size)
                if len(head) < _ENTRY.size:
                    return
                crc, partition, offset, ts, key_len, value_len, headers_len = _ENTRY.unpack(head)
                size = max(key_len, 0) + value_len + headers_len
                rest = f.read(size)
                if len(rest) < size or zlib.crc32(head[4:] + rest) != crc:
                    return
                key = None if key_len < 0 else rest[:key_len]
                value = rest[max(key_len, 0) : max(key_len, 0) + value_len]
                headers = _unpack_headers(rest[max(key_len, 0) + value_len :])
                pos += _ENTRY.size + size
                yield pos, Entry(partition, offset, ts, key, value, headers)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def by_partition(journal: Journal) -> dict[int, list[Entry]]:
    """Entries grouped by partition, in offset order, each offset once (the first copy wins)."""
    grouped: dict[int, dict[int, Entry]] = {}
    for entry in journal.entries():
        grouped.setdefault(entry.partition, {}).setdefault(entry.offset, entry)
    return {p: [offsets[o] for o in sorted(offsets)] for p, offsets in sorted(grouped.items())}


def with_fillers(entries: Sequence[Entry]) -> Iterator[Entry]:
    """The partition's entries from offset 0, a filler in every hole, so replay lands on the same offsets."""
    expected = 0
    for entry in entries:
        while expected < entry.offset:
            yield Entry(entry.partition, expected, entry.timestamp_ms, None, b"", ((FILLER_HEADER, b"1"),))
            expected += 1
        yield entry
        expected = entry.offset + 1
