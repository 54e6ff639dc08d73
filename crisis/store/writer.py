"""The store's one writing connection, owned by one thread: a whole batch and its checkpoint per transaction.

The event loop never waits for the disk: it hands a batch over and goes on folding. SQLite releases the
interpreter lock while it works, so the writing runs beside the fold on another core.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from crisis.domain.envelope import envelope_json
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

# Many rows per statement: executemany would take the interpreter lock back once per row, and a thread
# that needs the lock waits up to the switch interval (5 ms) for it while the event loop computes.
_PARAMS_PER_STATEMENT = 4000

Statement = tuple[str, list[Any]]


def _many(head: str, rows: list[tuple[Any, ...]], tail: str = "") -> list[Statement]:
    """`head VALUES (...), (...), ... tail` over all `rows`, a few thousand parameters a statement."""
    if not rows:
        return []
    width = len(rows[0])
    per = max(1, _PARAMS_PER_STATEMENT // width)
    one = "(" + ", ".join("?" * width) + ")"
    statements = []
    for at in range(0, len(rows), per):
        chunk = rows[at : at + per]
        values = ", ".join([one] * len(chunk))
        statements.append((f"{head} VALUES {values} {tail}", [v for row in chunk for v in row]))
    return statements


def connect(path: Path, cache_mib: int) -> sqlite3.Connection:
    # check_same_thread off: the reading connection is opened by whoever opens the store and read on the
    # event loop's thread; each connection is still used by one thread at a time.
    db = sqlite3.connect(path, check_same_thread=False)
    # WAL with synchronous=NORMAL: a power cut may lose the last commits, never corrupt the file; the
    # log brings back whatever a lost commit held. WAL also lets the loop read while the writer writes.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
    # Erased values are overwritten with zeros, never left behind in free pages.
    db.execute("PRAGMA secure_delete=ON")
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
        prepared, wipe = statements(batch), batch.wipe
        return self.call(lambda db: _write(db, prepared, wipe))

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


def statements(batch: Batch) -> list[Statement]:
    """The batch as SQL with its parameters: made on the event loop, so the writer thread runs no Python
    of its own (a thread busy in Python holds the interpreter lock while the loop waits for it)."""
    added, changed = [], []
    for (crisis_id, _), shared in batch.indicators.items():
        r, text = shared.record, dump_indicator(shared.record)
        if shared.new:
            d = r.data
            added.append(
                (crisis_id, shared.seq, d.indicator_id, str(d.kind), d.canonical, int(r.retracted), text)
            )
        else:
            changed.append((text, int(r.retracted), crisis_id, r.data.indicator_id, r.data.canonical))
    entries: dict[str, list[tuple[Any, ...]]] = {}
    for (table, crisis_id, seq), env in batch.entries.items():
        entries.setdefault(table, []).append((crisis_id, seq, envelope_json(env).decode()))
    crises = [(cid, seq, state.model_dump_json()) for cid, (seq, state) in batch.crises.items()]
    outcomes = [(i, int(o.accepted), o.code, o.message, o.sighting_of) for i, o in batch.outcomes.items()]
    requests = [
        (scope, seq, digest, envelope_json(env).decode())
        for scope, written in batch.requests.items()
        for seq, digest, env in written
    ]
    found = [
        *_many("INSERT INTO crises (id, seq, state)", crises, _UPSERT_CRISIS),
        *_many("INSERT INTO indicators (crisis, seq, id, kind, canonical, retracted, record)", added),
        *_many(
            "UPDATE indicators SET record = v.column1, retracted = v.column2, canonical = v.column5 FROM (",
            changed,
            _UPDATED,
        ),
        *_many("INSERT OR REPLACE INTO outcomes", outcomes),
        # OR REPLACE: an erasure overwrites entries already on disk in place.
        *_many("INSERT OR REPLACE INTO requests", requests),
    ]
    for table, rows in entries.items():
        found += _many(f"INSERT OR REPLACE INTO {table} (crisis, seq, envelope)", rows)
    if batch.checkpoint is not None:
        log_id, positions, duplicates = batch.checkpoint
        meta = [
            ("version", json.dumps(VERSION)),
            ("log_id", json.dumps(log_id)),
            ("positions", json.dumps(positions)),
            ("duplicates", json.dumps(sorted(duplicates))),
        ]
        found += _many("INSERT OR REPLACE INTO meta", meta)
    return found


# After the VALUES of crises: the first one saved inserts, later ones change the state.
_UPSERT_CRISIS = "ON CONFLICT (id) DO UPDATE SET state = excluded.state"
# The canonical value changes only when an erasure overwrites it.
_UPDATE_INDICATORS = (
    "UPDATE indicators SET record = v.column1, retracted = v.column2, canonical = v.column5 FROM ("
)
_UPDATED = ") AS v WHERE indicators.crisis = v.column3 AND indicators.id = v.column4"


def _write(db: sqlite3.Connection, prepared: list[Statement], wipe: bool = False) -> None:
    """One transaction: the batch's state and the positions it reflects, or (on a crash) neither."""
    with db:
        for sql, params in prepared:
            db.execute(sql, params)
    if wipe:
        # The WAL holds the pages as they were before an erasure: copied back into the file and emptied.
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
