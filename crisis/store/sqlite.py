"""The fold's storage in a local SQLite file, with the log id and positions it reflects (a checkpoint).

Modelled on Kafka Streams' local state stores: a process restores from its store and reads only the log's
tail, instead of holding and re-reading all history. State and positions are committed in one
transaction per folded batch, so a store never reflects a position it has not folded, nor the reverse:
after a crash the tail since the last commit is simply folded again.

The store belongs to one process (a lock file says so): two processes fold the same log each into their
own store, and reach the same verdicts because the rules and the log are the same.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from operator import index
from pathlib import Path
from typing import IO, Any, SupportsIndex

from crisis.domain.book import FirstRequest, IndicatorRecord, Outcome, Sighting
from crisis.domain.crisis import CrisisState
from crisis.domain.enums import Tlp
from crisis.domain.envelope import Envelope
from crisis.domain.events import ActionReported, IndicatorShared

# Bump when the layout or the fold's rules change: a store of another version is rebuilt from the log.
VERSION = "1"

_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS outcomes (id TEXT PRIMARY KEY, accepted INTEGER NOT NULL, code TEXT NOT NULL,
    message TEXT NOT NULL, sighting_of TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS requests (scope TEXT NOT NULL, seq INTEGER NOT NULL, digest TEXT NOT NULL,
    envelope TEXT NOT NULL, PRIMARY KEY (scope, seq)) WITHOUT ROWID;
"""


class StoreBusy(RuntimeError):
    """Another process holds this state directory."""


def _dump_indicator(r: IndicatorRecord) -> str:
    return json.dumps(
        {
            "data": r.data.model_dump(mode="json"),
            "shared_at": r.shared_at.isoformat(),
            "tlp": str(r.tlp),
            "to": list(r.tlprecipients),
            "seen": [[s.org, s.at.isoformat()] for s in r.sightings],
            "retracted": r.retracted,
        },
        separators=(",", ":"),
    )


def _load_indicator(text: str) -> IndicatorRecord:
    raw = json.loads(text)
    return IndicatorRecord(
        data=IndicatorShared.model_validate(raw["data"]),
        shared_at=datetime.fromisoformat(raw["shared_at"]),
        tlp=Tlp(raw["tlp"]),
        tlprecipients=tuple(raw["to"]),
        sightings=[Sighting(org=org, at=datetime.fromisoformat(at)) for org, at in raw["seen"]],
        retracted=raw["retracted"],
    )


def _load_envelope(text: str) -> Envelope:
    return Envelope.model_validate_json(text)


class _Entries:
    """An append-only list of envelopes of one crisis in one table."""

    def __init__(self, db: sqlite3.Connection, table: str, crisis_id: str) -> None:
        self._db = db
        self._crisis = crisis_id
        self._insert = f"INSERT INTO {table} (crisis, seq, envelope) VALUES (?, ?, ?)"  # noqa: S608 -- fixed names
        self._select = f"SELECT envelope FROM {table} WHERE crisis = ? AND seq = ?"  # noqa: S608
        self._update = f"UPDATE {table} SET envelope = ? WHERE crisis = ? AND seq = ?"  # noqa: S608
        self._scan = f"SELECT envelope FROM {table} WHERE crisis = ? AND seq >= ? ORDER BY seq LIMIT 500"  # noqa: S608
        count = db.execute(f"SELECT count(*) FROM {table} WHERE crisis = ?", (crisis_id,))  # noqa: S608
        self._len: int = count.fetchone()[0]

    def _append(self, env: Envelope) -> None:
        self._db.execute(self._insert, (self._crisis, self._len, env.model_dump_json()))
        self._len += 1

    def __len__(self) -> int:
        return self._len

    def _set(self, position: int, env: Envelope) -> None:
        """Overwrite one entry (erasure): secure_delete zeroes what it held."""
        self._db.execute(self._update, (env.model_dump_json(), self._crisis, position))

    def _get(self, position: int) -> Envelope:
        if position < 0:
            position += self._len
        row = self._db.execute(self._select, (self._crisis, position)).fetchone()
        if row is None:
            raise IndexError(position)
        return _load_envelope(row[0])

    def _iter(self) -> Iterator[Envelope]:
        # In slices, so a long timeline is never read whole; up to the length when iteration began.
        end, at = self._len, 0
        while at < end:
            rows = self._db.execute(self._scan, (self._crisis, at)).fetchall()
            if not rows:
                return
            for (text,) in rows[: end - at]:
                yield _load_envelope(text)
            at += len(rows)


class Timeline(_Entries):
    def append(self, item: Envelope, /) -> None:
        self._append(item)

    def __getitem__(self, position: int, /) -> Envelope:
        return self._get(position)

    def __setitem__(self, position: SupportsIndex, item: Envelope, /) -> None:
        self._set(index(position), item)

    def __iter__(self) -> Iterator[Envelope]:
        return self._iter()


class Actions(_Entries):
    def append(self, item: tuple[Envelope, ActionReported], /) -> None:
        self._append(item[0])

    def __setitem__(self, position: SupportsIndex, item: tuple[Envelope, ActionReported], /) -> None:
        self._set(index(position), item[0])

    def __getitem__(self, position: int, /) -> tuple[Envelope, ActionReported]:
        env = self._get(position)
        return env, ActionReported.model_validate(env.data)

    def __iter__(self) -> Iterator[tuple[Envelope, ActionReported]]:
        for env in self._iter():
            yield env, ActionReported.model_validate(env.data)


class Indicators:
    def __init__(self, db: sqlite3.Connection, crisis_id: str) -> None:
        self._db = db
        self._crisis = crisis_id
        count = db.execute("SELECT count(*) FROM indicators WHERE crisis = ?", (crisis_id,))
        self._len: int = count.fetchone()[0]

    def get(self, indicator_id: str, /) -> IndicatorRecord | None:
        row = self._db.execute(
            "SELECT record FROM indicators WHERE crisis = ? AND id = ?", (self._crisis, indicator_id)
        ).fetchone()
        return _load_indicator(row[0]) if row else None

    def __getitem__(self, indicator_id: str, /) -> IndicatorRecord:
        found = self.get(indicator_id)
        if found is None:
            raise KeyError(indicator_id)
        return found

    def __contains__(self, indicator_id: object, /) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM indicators WHERE crisis = ? AND id = ?", (self._crisis, indicator_id)
        ).fetchone()
        return row is not None

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        for r in self.values():
            yield r.data.indicator_id

    def add(self, record: IndicatorRecord, /) -> None:
        d = record.data
        self._db.execute(
            "INSERT INTO indicators (crisis, seq, id, kind, canonical, retracted, record) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self._crisis,
                self._len,
                d.indicator_id,
                str(d.kind),
                d.canonical,
                int(record.retracted),
                _dump_indicator(record),
            ),
        )
        self._len += 1

    def put(self, record: IndicatorRecord, /) -> None:
        self._db.execute(
            "UPDATE indicators SET record = ?, retracted = ?, canonical = ? WHERE crisis = ? AND id = ?",
            (
                _dump_indicator(record),
                int(record.retracted),
                record.data.canonical,  # changed by erasure only
                self._crisis,
                record.data.indicator_id,
            ),
        )

    def at(self, position: int, /) -> IndicatorRecord:
        row = self._db.execute(
            "SELECT record FROM indicators WHERE crisis = ? AND seq = ?", (self._crisis, position)
        ).fetchone()
        if row is None:
            raise IndexError(position)
        return _load_indicator(row[0])

    def live(self, kind: str, canonical: str, /) -> list[str]:
        # Sorted here, not by ORDER BY: that would lead the planner to walk the crisis in share order.
        rows = self._db.execute(
            "SELECT seq, id FROM indicators INDEXED BY indicators_value "
            "WHERE crisis = ? AND kind = ? AND canonical = ? AND retracted = 0",
            (self._crisis, kind, canonical),
        ).fetchall()
        return [indicator_id for _, indicator_id in sorted(rows)]

    def values(self) -> Iterator[IndicatorRecord]:
        end, at = self._len, 0
        while at < end:
            rows = self._db.execute(
                "SELECT record FROM indicators WHERE crisis = ? AND seq >= ? AND seq < ? "
                "ORDER BY seq LIMIT 500",
                (self._crisis, at, end),
            ).fetchall()
            if not rows:
                return
            for (text,) in rows:
                yield _load_indicator(text)
            at += len(rows)


_ACCEPTED = Outcome(accepted=True)


class Outcomes:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def get(self, event_id: str, /) -> Outcome | None:
        row = self._db.execute(
            "SELECT accepted, code, message, sighting_of FROM outcomes WHERE id = ?", (event_id,)
        ).fetchone()
        if row is None:
            return None
        accepted, code, message, sighting_of = row
        if accepted and not code and sighting_of is None:
            return _ACCEPTED
        return Outcome(accepted=bool(accepted), code=code, message=message, sighting_of=sighting_of)

    def __setitem__(self, event_id: str, outcome: Outcome, /) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?)",
            (event_id, int(outcome.accepted), outcome.code, outcome.message, outcome.sighting_of),
        )

    def __getitem__(self, event_id: str, /) -> Outcome:
        found = self.get(event_id)
        if found is None:
            raise KeyError(event_id)
        return found

    def __contains__(self, event_id: object, /) -> bool:
        return self._db.execute("SELECT 1 FROM outcomes WHERE id = ?", (event_id,)).fetchone() is not None


class Requests:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        # The scope written last and its next position: a batch's events share one scope.
        self._last: tuple[str, int] | None = None

    def get(self, scope: str, /) -> FirstRequest | None:
        rows = self._db.execute(
            "SELECT digest, envelope FROM requests WHERE scope = ? ORDER BY seq", (scope,)
        ).fetchall()
        if not rows:
            return None
        return FirstRequest(rows[0][0], [_load_envelope(text) for _, text in rows])

    def digest(self, scope: str, /) -> str | None:
        row = self._db.execute("SELECT digest FROM requests WHERE scope = ? AND seq = 0", (scope,)).fetchone()
        return row[0] if row else None

    def record(self, scope: str, digest: str, env: Envelope, /) -> None:
        if self._last is not None and self._last[0] == scope:
            seq = self._last[1]
        else:
            row = self._db.execute("SELECT max(seq) FROM requests WHERE scope = ?", (scope,)).fetchone()
            seq = 0 if row[0] is None else row[0] + 1
            first = self.digest(scope)
            digest = first if first is not None else digest
        self._db.execute(
            "INSERT INTO requests VALUES (?, ?, ?, ?)", (scope, seq, digest, env.model_dump_json())
        )
        self._last = (scope, seq + 1)

    def scrub(self, crisis_id: str, erase: Callable[[Envelope], Envelope | None], /) -> None:
        # Rare (an erasure) and not indexed by crisis: every kept request is looked at.
        rows = self._db.execute("SELECT scope, seq, envelope FROM requests").fetchall()
        for scope, seq, text in rows:
            env = _load_envelope(text)
            if env.subject == crisis_id and (after := erase(env)) is not None:
                self._db.execute(
                    "UPDATE requests SET envelope = ? WHERE scope = ? AND seq = ?",
                    (after.model_dump_json(), scope, seq),
                )


class SqliteStorage:
    """Storage (crisis.domain.storage) in one SQLite file, and the checkpoint it reflects."""

    def __init__(self, directory: Path, *, cache_mib: int = 32, commit_every_s: float = 1.0) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "state.sqlite3"
        self._lock: IO[bytes] = (directory / "state.lock").open("wb")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock.close()
            raise StoreBusy(f"another process keeps its state in {directory}") from exc
        self._cache_mib = cache_mib
        self._commit_every_s = commit_every_s
        self._pending: tuple[str, dict[int, int], set[tuple[int, int]]] | None = None
        self._wipe = False  # values were erased: commit at the next checkpoint and empty the WAL
        self._committed_at = time.monotonic()
        self._open()

    def _open(self) -> None:
        db = sqlite3.connect(self.path)
        # WAL with synchronous=NORMAL: a power cut may lose the last commits, never corrupt the file;
        # the log brings back whatever a lost commit held.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA cache_size=-{self._cache_mib * 1024}")
        # Erased values are overwritten with zeros, not left in free pages.
        db.execute("PRAGMA secure_delete=ON")
        db.executescript(_SCHEMA)
        db.commit()
        self._db = db
        self.outcomes = Outcomes(db)
        self.requests = Requests(db)
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if meta and meta.get("version") != json.dumps(VERSION):
            self.reset("")

    def indicators(self, crisis_id: str, /) -> Indicators:
        return Indicators(self._db, crisis_id)

    def timeline(self, crisis_id: str, /) -> Timeline:
        return Timeline(self._db, "timeline", crisis_id)

    def actions(self, crisis_id: str, /) -> Actions:
        return Actions(self._db, "actions", crisis_id)

    def save_crisis(self, state: CrisisState, /) -> None:
        self._db.execute(
            "INSERT INTO crises VALUES (?, (SELECT count(*) FROM crises), ?) "
            "ON CONFLICT (id) DO UPDATE SET state = excluded.state",
            (state.id, state.model_dump_json()),
        )

    def crisis_states(self) -> list[CrisisState]:
        rows = self._db.execute("SELECT state FROM crises ORDER BY seq").fetchall()
        return [CrisisState.model_validate_json(text) for (text,) in rows]

    def erased(self) -> None:
        self._wipe = True

    # The checkpoint: which log, up to where, and the positions of repeated events in it.

    def _meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    @property
    def log_id(self) -> str | None:
        found = self._meta("log_id")
        return str(found) if found is not None else None

    def positions(self) -> dict[int, int]:
        return {int(p): int(o) for p, o in (self._meta("positions") or {}).items()}

    def duplicates(self) -> set[tuple[int, int]]:
        return {(int(p), int(o)) for p, o in self._meta("duplicates") or []}

    def checkpoint(self, log_id: str, positions: dict[int, int], duplicates: set[tuple[int, int]]) -> None:
        """Record the positions everything folded so far reflects; committed together with it at most
        every `commit_every_s` (a commit costs milliseconds; what a crash loses the log brings back)."""
        self._pending = (log_id, dict(positions), set(duplicates))
        if self._wipe or time.monotonic() - self._committed_at >= self._commit_every_s:
            self.commit()
        if self._wipe:
            # The WAL holds the pages as they were before the erasure: copied back and emptied.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._wipe = False

    def commit(self) -> None:
        """Commit the state and the positions last recorded, in one transaction."""
        if self._pending is None:
            return
        log_id, positions, duplicates = self._pending
        rows = [
            ("version", json.dumps(VERSION)),
            ("log_id", json.dumps(log_id)),
            ("positions", json.dumps(positions)),
            ("duplicates", json.dumps(sorted(duplicates))),
        ]
        self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)
        self._db.commit()
        self._pending = None
        self._committed_at = time.monotonic()

    def reset(self, log_id: str) -> None:
        """Forget everything: the store is for another log (or another version) and is rebuilt."""
        self._pending = None
        self._db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._open()
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (json.dumps(VERSION),))
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('log_id', ?)", (json.dumps(log_id),))
        self._db.commit()

    def close(self) -> None:
        self.commit()
        self._db.close()
        self._lock.close()
