"""The data keys a process has learned, in a SQLite file of its own beside its local store.

One row per key id: the key (NULL once destroyed or forgotten: the id stays, so the key is never taken
back from a stale copy) and the source that holds it (a file of the keys directory, a record of the keys
topic). Beside them, the sources taken in (with the topic offset of their latest record) and how far the
process has read, so a restart reads only what is new. The file is a cache of the source of truth (the
keys directory, the keys topic): one of another source, or one SQLite cannot read, is emptied and built
again from the beginning.

Destroyed keys are overwritten where they lay (`secure_delete`) and the write-ahead log is emptied
(`wal_checkpoint(TRUNCATE)`) before the destroying call returns, as the fold's store does for erased values.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import structlog

from crisis.domain import sensitive
from crisis.store.transactions import immediate

log = structlog.get_logger(__name__)

FILE_NAME: Final = "keys.sqlite3"
VERSION: Final = "1"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keys (
    kid TEXT PRIMARY KEY, key BLOB, src TEXT, marked INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS keys_src ON keys (src) WHERE src IS NOT NULL;
CREATE INDEX IF NOT EXISTS keys_stale ON keys (src) WHERE key IS NULL AND src IS NOT NULL;
CREATE TABLE IF NOT EXISTS sources (name TEXT PRIMARY KEY, pos INTEGER NOT NULL) WITHOUT ROWID;
"""
_CHUNK: Final = 500  # ids per IN (...): under SQLite's limit of bound parameters


# Rows per insert statement (three parameters each).
_ROWS: Final = 300


def _chunks(items: Collection[str]) -> Iterator[list[str]]:
    ordered = list(items)
    for at in range(0, len(ordered), _CHUNK):
        yield ordered[at : at + _CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def key_range(covers: Callable[[str], bool]) -> str | None:
    """The crisis whose keys (`<crisis id>`, `<crisis id>/...`) are the only ones `covers` may match, when
    it is an erasure's (crisis.domain.sensitive.erasure_covers), else None."""
    return covers.crisis_id if isinstance(covers, sensitive.Covers) else None


class KeyFile:
    """`keys.sqlite3` in a state directory, for the keys of one source (`source` names it)."""

    def __init__(self, directory: Path, source: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILE_NAME
        self.source = source
        # The keyring calls in from the event loop and from worker threads: one connection, one at a time.
        self._lock = threading.RLock()
        self._wal_to_empty = False
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            log.warning("key_file_rebuilt", reason="unreadable", error=str(exc))
            self._remove()
            self._db = self._open()
        if self._meta("source") != source or self._meta("version") != VERSION:
            if self._meta("source") is not None:
                log.warning("key_file_rebuilt", reason="another source", source=source)
            self._reset()

    def _open(self) -> sqlite3.Connection:
        if not self.path.exists():
            # Created private: the write-ahead log and its index take the file's mode.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA secure_delete=ON")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA cache_size=-8192")
            # Each batch of new keys dirties pages all over the index (random ids): copied back into the
            # file every ~40 MB of log rather than every 4 MB, a page dirtied again meanwhile is copied once.
            # An erasure empties the log at once all the same (_truncate_wal).
            db.execute("PRAGMA wal_autocheckpoint=10000")
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM meta").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        self.path.chmod(0o600)
        return db

    def _remove(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def _reset(self) -> None:
        with self._tx() as db:
            for table in ("meta", "keys", "sources"):
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            db.executemany("INSERT INTO meta VALUES (?, ?)", [("source", self.source), ("version", VERSION)])
        self._truncate_wal()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db.in_transaction:  # within batch(): its transaction
                yield self._db
                return
            with immediate(self._db) as db:
                yield db
            if self._wal_to_empty:
                self._truncate_wal()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Changes made in the block in one transaction: a random key id touches its own pages of the
        index, so many sources taken in at once write each page once rather than once per source."""
        with self._tx():
            yield

    def _truncate_wal(self) -> None:
        with self._lock:
            if self._db.in_transaction:
                self._wal_to_empty = True  # once the transaction is committed
                return
            self._wal_to_empty = False
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _meta(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # Reading.

    def get(self, kid: str) -> bytes | None:
        """The key, or None when it is unknown here or dead (one indexed read)."""
        with self._lock:
            row = self._db.execute("SELECT key FROM keys WHERE kid = ?", (kid,)).fetchone()
        return None if row is None else row[0]

    def dead(self, kids: Collection[str]) -> set[str]:
        """Those of `kids` destroyed or forgotten here."""
        return self._matching("key IS NULL AND", kids)

    def live(self, kids: Collection[str]) -> set[str]:
        """Those of `kids` whose key is here and alive."""
        return self._matching("key IS NOT NULL AND", kids)

    def known(self, kids: Collection[str]) -> set[str]:
        """Those of `kids` that have a row here, live or dead."""
        return self._matching("", kids)

    def _matching(self, condition: str, kids: Collection[str]) -> set[str]:
        """Those of `kids` whose row meets `condition` (a fixed SQL fragment ending in AND, or empty)."""
        out: set[str] = set()
        with self._lock:
            for chunk in _chunks(kids):
                sql = f"SELECT kid FROM keys WHERE {condition} kid IN ({_marks(len(chunk))})"  # noqa: S608
                out.update(row[0] for row in self._db.execute(sql, chunk))
        return out

    def where(self, kids: Collection[str]) -> dict[str, str]:
        """The source that holds each of `kids` known here."""
        out: dict[str, str] = {}
        with self._lock:
            for chunk in _chunks(kids):
                sql = f"SELECT kid, src FROM keys WHERE src IS NOT NULL AND kid IN ({_marks(len(chunk))})"  # noqa: S608
                out.update((row[0], row[1]) for row in self._db.execute(sql, chunk))
        return out

    def held(self, src: str) -> dict[str, bytes | None]:
        """The key ids a source holds as last taken in (None for a dead one) and their keys."""
        with self._lock:
            rows = self._db.execute("SELECT kid, key FROM keys WHERE src = ?", (src,)).fetchall()
        return {row[0]: row[1] for row in rows}

    def covered(self, covers: Callable[[str], bool], *, live: bool = False) -> dict[str, str | None]:
        """The key ids known here (`live`: those with a key) that `covers` matches, with their sources: by
        the crisis's range of the index when `covers` names its crisis, else by a scan."""
        crisis = key_range(covers)
        alive = " AND key IS NOT NULL" if live else ""
        with self._lock:
            if crisis is None:
                rows = self._db.execute(f"SELECT kid, src FROM keys WHERE 1{alive}")  # noqa: S608
            else:
                # `<crisis>` itself and the ids from `<crisis>/` up to, not including, `<crisis>0`: exactly
                # those that start with `<crisis>/`.
                rows = self._db.execute(
                    f"SELECT kid, src FROM keys WHERE (kid = ? OR (kid >= ? AND kid < ?)){alive}",  # noqa: S608
                    (crisis, f"{crisis}/", f"{crisis}0"),
                )
            return {kid: src for kid, src in rows if covers(kid)}

    def unmarked(self, kids: Collection[str]) -> set[str]:
        """Those of `kids` whose destruction marker was neither read nor written here."""
        return set(kids) - self._matching("marked = 1 AND", kids)

    def stale(self) -> set[str]:
        """The sources whose latest form still holds a dead key."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT src FROM keys WHERE key IS NULL AND src IS NOT NULL")
            return {row[0] for row in rows}

    def pos(self, src: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT pos FROM sources WHERE name = ?", (src,)).fetchone()
        return None if row is None else int(row[0])

    def sources(self) -> dict[str, int]:
        with self._lock:
            return {row[0]: row[1] for row in self._db.execute("SELECT name, pos FROM sources")}

    def position(self) -> int | None:
        value = self._meta("position")
        return None if value is None else int(value)

    # Writing.

    def take(
        self,
        src: str,
        keys: Mapping[str, bytes | None],
        *,
        pos: int = 0,
    ) -> None:
        """A source as it now stands: its keys (None: dead) replace what it held, and the ids it no longer
        holds are dead for good. A key dead here stays dead. `pos`: the offset of the source's record."""
        with self._tx() as db:
            before = {row[0] for row in db.execute("SELECT kid FROM keys WHERE src = ?", (src,))}
            self._kill(db, before - keys.keys())
            for chunk in _chunks(before - keys.keys()):
                sql = f"UPDATE keys SET src = NULL WHERE kid IN ({_marks(len(chunk))})"  # noqa: S608
                db.execute(sql, chunk)
            self._upsert(db, src, keys)
            if keys:
                db.execute("INSERT OR REPLACE INTO sources VALUES (?, ?)", (src, pos))
            else:
                db.execute("DELETE FROM sources WHERE name = ?", (src,))
        if before - keys.keys() or None in keys.values():
            self._truncate_wal()  # a key killed here leaves no copy in the write-ahead log

    def _upsert(self, db: sqlite3.Connection, src: str, keys: Mapping[str, bytes | None]) -> None:
        # Many rows a statement, in index order (fewer pages touched): executemany would take the
        # interpreter lock back once per row, and the thread that files new keys would wait for it.
        rows = sorted((kid, key, src) for kid, key in keys.items())
        for at in range(0, len(rows), _ROWS):
            chunk = rows[at : at + _ROWS]
            db.execute(
                f"INSERT INTO keys (kid, key, src) VALUES {', '.join(['(?, ?, ?)'] * len(chunk))}"  # noqa: S608
                " ON CONFLICT (kid) DO UPDATE SET"
                " src = excluded.src, key = CASE WHEN keys.key IS NULL THEN NULL ELSE excluded.key END",
                [value for row in chunk for value in row],
            )

    def _kill(self, db: sqlite3.Connection, kids: Collection[str], *, marked: bool = False) -> None:
        for chunk in _chunks(kids):
            db.execute(
                f"UPDATE keys SET key = NULL{', marked = 1' if marked else ''}"  # noqa: S608
                f" WHERE kid IN ({_marks(len(chunk))})",
                chunk,
            )
            db.executemany(
                "INSERT OR IGNORE INTO keys (kid, key, src, marked) VALUES (?, NULL, NULL, ?)",
                [(kid, int(marked)) for kid in chunk],
            )

    def drop_source(self, src: str) -> None:
        """A source gone from the source of truth: its live keys go, its dead ones stay dead."""
        with self._tx() as db:
            db.execute("DELETE FROM keys WHERE src = ? AND key IS NOT NULL", (src,))
            db.execute("UPDATE keys SET src = NULL WHERE src = ?", (src,))
            db.execute("DELETE FROM sources WHERE name = ?", (src,))
        self._truncate_wal()

    def kill(self, kids: Collection[str], *, marked: bool = False) -> None:
        """Destroy or forget keys here at once: overwritten in the file, the write-ahead log emptied.
        `marked`: their destruction marker is on the topic."""
        if not kids:
            return
        with self._tx() as db:
            self._kill(db, kids, marked=marked)
        self._truncate_wal()

    def forget(self, covers: Callable[[str], bool]) -> list[str]:
        """Kill the live keys `covers` matches; returns their ids."""
        alive = sorted(self.covered(covers, live=True))
        self.kill(alive)
        return alive

    def read_to(self, position: int) -> None:
        """How far the source is read (the topic offset), when no source changed on the way."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('position', ?)", (str(position),))

    def reset(self) -> None:
        """Empty the file, to build it again from the beginning of the source."""
        self._reset()
