"""The store's one writing connection, owned by one thread: a whole batch and its checkpoint per transaction.

The event loop never waits for the disk: it hands a batch over and goes on folding. SQLite releases the
interpreter lock while it works, so the writing runs beside the fold on another core.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from crisis.store.batch import Batch
from crisis.store.codec import dump_indicator

T = TypeVar("T")

# Bump when the layout or the fold's rules change: a store of another version is rebuilt from the log.
VERSION = "2"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS crises (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS indicators (
    crisis TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL,
    canonical TEXT NOT NULL, retracted INTEGER NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (crisis, seq));
CREATE UNIQUE INDEX IF NOT EXISTS indicators_id ON indicators (crisis, id);
CREATE INDEX IF NOT EXISTS indicators_value ON indicators (crisis, kind, canonical) WHERE retracted = 0;
CREATE TABLE IF NOT EXISTS timeline (crisis TEXT NOT NULL, seq INTEGER NOT NULL, envelope TEXT NOT NULL,
    PRIMARY KEY (crisis, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS actions (crisis TEXT NOT NULL, seq INTEGER NOT NULL, envelope TEXT NOT NULL,
    PRIMARY KEY (crisis, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS missed (crisis TEXT NOT NULL, seq INTEGER NOT NULL, envelope TEXT NOT NULL,
    PRIMARY KEY (crisis, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outcomes (id TEXT PRIMARY KEY, accepted INTEGER NOT NULL, code TEXT NOT NULL,
    message TEXT NOT NULL, sighting_of TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS requests (scope TEXT NOT NULL, seq INTEGER NOT NULL, digest TEXT NOT NULL,
    envelope TEXT NOT NULL, PRIMARY KEY (scope, seq)) WITHOUT ROWID;
"""

_INSERT_INDICATOR = (
    "INSERT INTO indicators (crisis, seq, id, kind, canonical, retracted, record) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_INDICATOR = "UPDATE indicators SET record = ?, retracted = ? WHERE crisis = ? AND id = ?"
_UPSERT_CRISIS = "INSERT INTO crises VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state"


def connect(path: Path, cache_mib: int) -> sqlite3.Connection:
    # check_same_thread off: the reading connection is opened by whoever opens the store and read on the
    # event loop's thread; each connection is still used by one thread at a time.
    db = sqlite3.connect(path, check_same_thread=False)
    # WAL with synchronous=NORMAL: a power cut may lose the last commits, never corrupt the file; the
    # log brings back whatever a lost commit held. WAL also lets the loop read while the writer writes.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
    return db


class Writer:
    """A thread with the store's writing connection; every call runs there, in the order made."""

    def __init__(self, path: Path, cache_mib: int) -> None:
        self._path = path
        self._cache_mib = cache_mib
        self._db: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> Future[T]:
        return self._thread.submit(self._run, fn)

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            self._db = connect(self._path, self._cache_mib)
            self._db.executescript(SCHEMA)
            self._db.commit()
        return fn(self._db)

    def write(self, batch: Batch) -> Future[None]:
        prepared = rows(batch)
        return self.call(lambda db: _write(db, prepared))

    def forget(self) -> Future[None]:
        """Delete the file and start an empty one (no reader may hold it open meanwhile)."""
        return self._thread.submit(self._forget)

    def _forget(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self._path}{suffix}").unlink(missing_ok=True)
        self._run(lambda db: None)

    def close(self) -> None:
        def close(db: sqlite3.Connection) -> None:
            db.close()
            self._db = None

        self.call(close).result()
        self._thread.shutdown()


@dataclass
class Rows:
    """A batch as the statements' parameters: made on the event loop, so the writer thread runs no Python
    of its own (a thread busy in Python would hold the interpreter lock while the loop waits for it)."""

    crises: list[tuple[str, int, str]]
    added: list[tuple[str, int, str, str, str, int, bytes]]
    changed: list[tuple[bytes, int, str, str]]
    entries: dict[str, list[tuple[str, int, str]]]
    outcomes: list[tuple[str, int, str, str, str | None]]
    requests: list[tuple[str, int, str, str]]
    meta: list[tuple[str, str]]


def rows(batch: Batch) -> Rows:
    added, changed = [], []
    for (crisis_id, _), shared in batch.indicators.items():
        r, text = shared.record, dump_indicator(shared.record)
        if shared.new:
            d = r.data
            added.append(
                (crisis_id, shared.seq, d.indicator_id, str(d.kind), d.canonical, int(r.retracted), text)
            )
        else:
            changed.append((text, int(r.retracted), crisis_id, r.data.indicator_id))
    entries: dict[str, list[tuple[str, int, str]]] = {}
    for (table, crisis_id, seq), env in batch.entries.items():
        entries.setdefault(table, []).append((crisis_id, seq, env.model_dump_json()))
    meta = []
    if batch.checkpoint is not None:
        log_id, positions, duplicates = batch.checkpoint
        meta = [
            ("version", json.dumps(VERSION)),
            ("log_id", json.dumps(log_id)),
            ("positions", json.dumps(positions)),
            ("duplicates", json.dumps(sorted(duplicates))),
        ]
    return Rows(
        crises=[(cid, seq, state.model_dump_json()) for cid, (seq, state) in batch.crises.items()],
        added=added,
        changed=changed,
        entries=entries,
        outcomes=[(i, int(o.accepted), o.code, o.message, o.sighting_of) for i, o in batch.outcomes.items()],
        requests=[
            (scope, seq, digest, env.model_dump_json())
            for scope, written in batch.requests.items()
            for seq, digest, env in written
        ],
        meta=meta,
    )


def _write(db: sqlite3.Connection, rows: Rows) -> None:
    """One transaction: the batch's state and the positions it reflects, or (on a crash) neither."""
    with db:
        db.executemany(_UPSERT_CRISIS, rows.crises)
        db.executemany(_INSERT_INDICATOR, rows.added)
        db.executemany(_UPDATE_INDICATOR, rows.changed)
        for table, entries in rows.entries.items():
            sql = f"INSERT INTO {table} (crisis, seq, envelope) VALUES (?, ?, ?)"  # noqa: S608 -- fixed names
            db.executemany(sql, entries)
        db.executemany("INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?)", rows.outcomes)
        db.executemany("INSERT INTO requests VALUES (?, ?, ?, ?)", rows.requests)
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows.meta)
