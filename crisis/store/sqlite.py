"""The fold's storage in a local SQLite file, with the log id and positions it reflects (a checkpoint).

Modelled on Kafka Streams' local state stores: a process restores from its store and reads only the log's
tail, instead of holding and re-reading all history.

Writes go to memory first (crisis.store.batch), where every read looks before the file. A batch goes to
the writer thread (crisis.store.writer) whole, together with the positions it reflects, once it is big or
old enough; the file therefore never reflects a position whose events it lacks, nor holds an event beyond
its positions: after a crash the tail since the last flush is simply folded again. While the writer is
behind, the fold waits (`flush_due`), so memory stays bounded.

The store belongs to one process (a lock file says so): two processes fold the same log each into their
own store, and reach the same verdicts because the rules and the log are the same.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

from crisis.domain.book import FirstRequest, IndicatorRecord, Outcome
from crisis.domain.crisis import CrisisState
from crisis.domain.enums import EventType
from crisis.domain.envelope import Envelope
from crisis.domain.events import ActionReported
from crisis.store.batch import Batch, detached
from crisis.store.codec import load_envelope, load_indicator
from crisis.store.values import Values, scan
from crisis.store.writer import VERSION, Writer, connect


class StoreBusy(RuntimeError):
    """Another process holds this state directory."""


class _Entries:
    """An append-only list of envelopes of one crisis in one table."""

    def __init__(self, store: SqliteStorage, table: str, crisis_id: str) -> None:
        self._store = store
        self._table = table
        self._crisis = crisis_id
        self._select = f"SELECT envelope FROM {table} WHERE crisis = ? AND seq = ?"  # noqa: S608 -- fixed names
        self._scan = f"SELECT envelope FROM {table} WHERE crisis = ? AND seq >= ? ORDER BY seq LIMIT 500"  # noqa: S608
        count = store.read(f"SELECT count(*) FROM {table} WHERE crisis = ?", (crisis_id,))  # noqa: S608
        self._len: int = count.fetchone()[0]

    def _append(self, env: Envelope) -> None:
        batch = self._store.pending
        batch.entries[(self._table, self._crisis, self._len)] = env
        batch.wrote()
        self._len += 1

    def __len__(self) -> int:
        return self._len

    def _written(self, position: int) -> Envelope | None:
        key = (self._table, self._crisis, position)
        for batch in self._store.batches():
            found = batch.entries.get(key)
            if found is not None:
                return found
        return None

    def _get(self, position: int) -> Envelope:
        if position < 0:
            position += self._len
        if not 0 <= position < self._len:
            raise IndexError(position)
        found = self._written(position)
        if found is not None:
            return found
        row = self._store.read(self._select, (self._crisis, position)).fetchone()
        if row is None:
            # Written to the file between the two looks.
            found = self._written(position)
            if found is None:
                raise IndexError(position)
            return found
        return load_envelope(row[0])

    def _iter(self) -> Iterator[Envelope]:
        # In slices, so a long timeline is never read whole; up to the length when iteration began. The
        # file holds a prefix and the batches the rest, so once a position is in a batch the rest are too.
        end, at = self._len, 0
        while at < end:
            found = self._written(at)
            if found is not None:
                yield found
                at += 1
                continue
            rows = self._store.read(self._scan, (self._crisis, at)).fetchall()
            if not rows:
                yield self._get(at)
                at += 1
                continue
            for (text,) in rows[: end - at]:
                yield load_envelope(text)
            at += len(rows)


class Timeline(_Entries):
    def append(self, item: Envelope, /) -> None:
        self._append(item)

    def __getitem__(self, position: int, /) -> Envelope:
        return self._get(position)

    def __iter__(self) -> Iterator[Envelope]:
        return self._iter()


class Actions(_Entries):
    def append(self, item: tuple[Envelope, ActionReported], /) -> None:
        self._append(item[0])

    def __getitem__(self, position: int, /) -> tuple[Envelope, ActionReported]:
        env = self._get(position)
        return env, ActionReported.model_validate(env.data)

    def __iter__(self) -> Iterator[tuple[Envelope, ActionReported]]:
        for env in self._iter():
            yield env, ActionReported.model_validate(env.data)


class Indicators:
    def __init__(self, store: SqliteStorage, crisis_id: str) -> None:
        self._store = store
        self._crisis = crisis_id
        count = store.read("SELECT count(*) FROM indicators WHERE crisis = ?", (crisis_id,))
        self._len: int = count.fetchone()[0]

    def _written(self, indicator_id: str) -> IndicatorRecord | None:
        pending, *flushing = self._store.batches()
        found = pending.indicators.get((self._crisis, indicator_id))
        if found is not None:
            return found.record
        for batch in flushing:
            found = batch.indicators.get((self._crisis, indicator_id))
            if found is not None:
                # Being written by the writer thread: the fold may only change a copy.
                return detached(found.record)
        return None

    def get(self, indicator_id: str, /) -> IndicatorRecord | None:
        found = self._written(indicator_id)
        if found is not None or (self._crisis, indicator_id) in self._store.absent:
            return found
        row = self._store.read(
            "SELECT record FROM indicators WHERE crisis = ? AND id = ?", (self._crisis, indicator_id)
        ).fetchone()
        if row is None:
            return self._written(indicator_id)  # written to the file between the two looks
        return load_indicator(row[0])

    def __getitem__(self, indicator_id: str, /) -> IndicatorRecord:
        found = self.get(indicator_id)
        if found is None:
            raise KeyError(indicator_id)
        return found

    def __contains__(self, indicator_id: object, /) -> bool:
        if not isinstance(indicator_id, str):
            return False
        key = (self._crisis, indicator_id)
        if any(key in batch.indicators for batch in self._store.batches()):
            return True
        if key in self._store.absent:
            return False
        row = self._store.read("SELECT 1 FROM indicators WHERE crisis = ? AND id = ?", key).fetchone()
        return row is not None or any(key in batch.indicators for batch in self._store.batches())

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        for r in self.values():
            yield r.data.indicator_id

    def add(self, record: IndicatorRecord, /) -> None:
        self._store.absent.discard((self._crisis, record.data.indicator_id))
        self._store.values.add((self._crisis, str(record.data.kind), record.data.canonical))
        self._store.pending.put_indicator(self._crisis, self._len, record, new=True)
        self._len += 1

    def put(self, record: IndicatorRecord, /) -> None:
        self._store.pending.put_indicator(self._crisis, -1, record, new=False)

    def _added(self, position: int) -> IndicatorRecord | None:
        for batch in self._store.batches():
            indicator_id = batch.added.get((self._crisis, position))
            if indicator_id is not None:
                return self[indicator_id]
        return None

    def at(self, position: int, /) -> IndicatorRecord:
        if not 0 <= position < self._len:
            raise IndexError(position)
        found = self._added(position)
        if found is not None:
            return found
        row = self._store.read(
            "SELECT id, record FROM indicators WHERE crisis = ? AND seq = ?", (self._crisis, position)
        ).fetchone()
        if row is None:
            found = self._added(position)  # written to the file between the two looks
            if found is None:
                raise IndexError(position)
            return found
        return self._written(row[0]) or load_indicator(row[1])

    def live(self, kind: str, canonical: str, /) -> list[str]:
        batches = list(reversed(self._store.batches()))  # the older batch first: the newer one wins
        live: dict[str, int] = {}
        if self._store.values.may_hold((self._crisis, kind, canonical)):
            # Sorted here, not by ORDER BY: that would lead the planner to walk the crisis in share order.
            rows = self._store.read(
                "SELECT id, seq FROM indicators INDEXED BY indicators_value "
                "WHERE crisis = ? AND kind = ? AND canonical = ? AND retracted = 0",
                (self._crisis, kind, canonical),
            ).fetchall()
            live = dict(rows)
        for batch in batches:
            for indicator_id in batch.by_value.get((self._crisis, kind, canonical), ()):
                shared = batch.indicators[(self._crisis, indicator_id)]
                if shared.record.retracted:
                    live.pop(indicator_id, None)
                elif shared.new:
                    live[indicator_id] = shared.seq
        return sorted(live, key=live.__getitem__)

    def values(self) -> Iterator[IndicatorRecord]:
        # In slices of the file, which holds a prefix of the positions; the rest are in the batches.
        end, at = self._len, 0
        while at < end:
            found = self._added(at)
            rows = (
                []
                if found is not None
                else self._store.read(
                    "SELECT seq, id, record FROM indicators WHERE crisis = ? AND seq >= ? AND seq < ? "
                    "ORDER BY seq LIMIT 500",
                    (self._crisis, at, end),
                ).fetchall()
            )
            if not rows or rows[0][0] != at:
                yield found or self.at(at)
                at += 1
                continue
            for _, indicator_id, text in rows:
                yield self._written(indicator_id) or load_indicator(text)
            at += len(rows)


_ACCEPTED = Outcome(accepted=True)
# Keys remembered absent, at most: a few batches' worth.
_ABSENT_MAX = 100_000


class Outcomes:
    def __init__(self, store: SqliteStorage) -> None:
        self._store = store

    def _written(self, event_id: str) -> Outcome | None:
        for batch in self._store.batches():
            found = batch.outcomes.get(event_id)
            if found is not None:
                return found
        return None

    def get(self, event_id: str, /) -> Outcome | None:
        found = self._written(event_id)
        if found is not None or event_id in self._store.absent:
            return found
        row = self._store.read(
            "SELECT accepted, code, message, sighting_of FROM outcomes WHERE id = ?", (event_id,)
        ).fetchone()
        if row is None:
            return self._written(event_id)  # written to the file between the two looks
        accepted, code, message, sighting_of = row
        if accepted and not code and sighting_of is None:
            return _ACCEPTED
        return Outcome(accepted=bool(accepted), code=code, message=message, sighting_of=sighting_of)

    def __setitem__(self, event_id: str, outcome: Outcome, /) -> None:
        self._store.absent.discard(event_id)
        batch = self._store.pending
        batch.outcomes[event_id] = outcome
        batch.wrote()

    def __getitem__(self, event_id: str, /) -> Outcome:
        found = self.get(event_id)
        if found is None:
            raise KeyError(event_id)
        return found

    def __contains__(self, event_id: object, /) -> bool:
        return isinstance(event_id, str) and self.get(event_id) is not None


class Requests:
    def __init__(self, store: SqliteStorage) -> None:
        self._store = store
        # The scope written last, its first digest and its next position: a batch's events share one scope.
        self._last: tuple[str, str, int] | None = None

    def _rows(self, scope: str) -> dict[int, tuple[str, Envelope]]:
        rows = self._store.read(
            "SELECT seq, digest, envelope FROM requests WHERE scope = ?", (scope,)
        ).fetchall()
        found = {seq: (digest, load_envelope(text)) for seq, digest, text in rows}
        for batch in reversed(self._store.batches()):
            for seq, digest, env in batch.requests.get(scope, ()):
                found[seq] = (digest, env)
        return found

    def get(self, scope: str, /) -> FirstRequest | None:
        rows = self._rows(scope)
        if not rows:
            return None
        ordered = [rows[seq] for seq in sorted(rows)]
        return FirstRequest(ordered[0][0], [env for _, env in ordered])

    def digest(self, scope: str, /) -> str | None:
        if self._last is not None and self._last[0] == scope:
            return self._last[1]
        for batch in self._store.batches():
            written = batch.requests.get(scope)
            if written:
                return written[0][1]
        row = self._store.read("SELECT digest FROM requests WHERE scope = ? AND seq = 0", (scope,)).fetchone()
        return row[0] if row else None

    def record(self, scope: str, digest: str, env: Envelope, /) -> None:
        if self._last is None or self._last[0] != scope:
            rows = self._rows(scope)
            first = rows[min(rows)][0] if rows else digest
            self._last = (scope, first, max(rows, default=-1) + 1)
        _, first, seq = self._last
        batch = self._store.pending
        batch.requests.setdefault(scope, []).append((seq, first, env))
        batch.wrote()
        self._last = (scope, first, seq + 1)


class SqliteStorage:
    """Storage (crisis.domain.storage) in one SQLite file, and the checkpoint it reflects."""

    def __init__(
        self,
        directory: Path,
        *,
        cache_mib: int = 16,
        commit_every_s: float = 1.0,
        flush_at: int = 6_000,
        max_pending: int = 18_000,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "state.sqlite3"
        self._lock: IO[bytes] = (directory / "state.lock").open("wb")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock.close()
            raise StoreBusy(f"another process keeps its state in {directory}") from exc
        self._cache_mib = cache_mib
        # A batch goes to disk once its first write is this old (seconds) or it holds this many writes (a
        # crash loses what the log brings back); the fold waits while the batch being written is not done
        # and the next one holds `max_pending` writes.
        self._commit_every_s = commit_every_s
        self._flush_at = flush_at
        self._max_pending = max_pending
        self.pending = Batch()
        self._flushing: tuple[Batch, Future[None]] | None = None
        self.failed: BaseException | None = None
        self._writer = Writer(self.path, cache_mib)
        self._open()

    def _open(self) -> None:
        self._writer.call(lambda db: None).result()  # the writer creates the file and its tables
        self._db = connect(self.path, self._cache_mib)
        self._db.execute("PRAGMA query_only=ON")
        self.outcomes = Outcomes(self)
        self.requests = Requests(self)
        self._views: dict[tuple[str, str], Any] = {}
        # Event ids and (crisis, indicator id) keys known not to be in the file (see prefetch).
        self.absent: set[Any] = set()
        self.values = Values(self._writer.call(scan))
        self._crisis_seq: dict[str, int] = dict(self._db.execute("SELECT id, seq FROM crises").fetchall())
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if meta and meta.get("version") != json.dumps(VERSION):
            self.reset("")

    def read(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    def prefetch(self, envelopes: Sequence[Envelope]) -> None:
        """Ask the file once for what the fold (or a write) of these events asks about each: whether their
        ids have a verdict, whether the indicators they share exist. New ids, the common case, then cost no
        query each. What is found absent stays so until written (which removes it from `absent`)."""
        if len(self.absent) > _ABSENT_MAX:
            self.absent.clear()
        # What a write of this process looked up already is not asked again when the fold meets it.
        absent = self.absent
        ids = [env.id for env in envelopes if env.id not in absent]
        absent.update(self._missing("SELECT id FROM outcomes WHERE id IN ({})", (), ids))
        shared: dict[str, list[str]] = {}
        for env in envelopes:
            indicator_id = env.data.get("indicator_id")
            if env.type is not EventType.INDICATOR_SHARED or not isinstance(indicator_id, str):
                continue
            if (env.subject, indicator_id) not in absent:
                shared.setdefault(env.subject, []).append(indicator_id)
        for crisis_id, indicator_ids in shared.items():
            sql = "SELECT id FROM indicators WHERE crisis = ? AND id IN ({})"
            self.absent.update((crisis_id, i) for i in self._missing(sql, (crisis_id,), indicator_ids))

    def _missing(self, sql: str, params: tuple[str, ...], keys: list[str]) -> set[str]:
        missing = set(keys)
        if not keys:
            return missing
        for at in range(0, len(keys), 500):
            chunk = keys[at : at + 500]
            rows = self.read(sql.format(",".join("?" * len(chunk))), (*params, *chunk))
            missing.difference_update(row[0] for row in rows)
        return missing

    def batches(self) -> list[Batch]:
        """What was written and is not on disk yet, the newest first."""
        flushing = self._flushing
        return [self.pending] if flushing is None else [self.pending, flushing[0]]

    def _view(self, kind: str, crisis_id: str) -> Any:
        # One view per crisis: it counts what it appends.
        key = (kind, crisis_id)
        if key not in self._views:
            self._views[key] = (
                Indicators(self, crisis_id) if kind == "indicators" else _ENTRIES[kind](self, kind, crisis_id)
            )
        return self._views[key]

    def indicators(self, crisis_id: str, /) -> Indicators:
        found: Indicators = self._view("indicators", crisis_id)
        return found

    def timeline(self, crisis_id: str, /) -> Timeline:
        found: Timeline = self._view("timeline", crisis_id)
        return found

    def actions(self, crisis_id: str, /) -> Actions:
        found: Actions = self._view("actions", crisis_id)
        return found

    def missed(self, crisis_id: str, /) -> Timeline:
        found: Timeline = self._view("missed", crisis_id)
        return found

    def save_crisis(self, state: CrisisState, /) -> None:
        seq = self._crisis_seq.setdefault(state.id, len(self._crisis_seq))
        self.pending.crises[state.id] = (seq, state)
        self.pending.wrote()

    def crisis_states(self) -> list[CrisisState]:
        rows = self._db.execute("SELECT id, seq, state FROM crises").fetchall()
        found = {cid: (seq, CrisisState.model_validate_json(text)) for cid, seq, text in rows}
        for batch in reversed(self.batches()):
            found.update(batch.crises)
        return [state for _, state in sorted(found.values(), key=lambda item: item[0])]

    # The checkpoint: which log, up to where, and the positions of repeated events in it.

    def _meta(self, key: str) -> Any:
        for batch in self.batches():
            if batch.checkpoint is not None:
                log_id, positions, duplicates = batch.checkpoint
                return {"log_id": log_id, "positions": positions, "duplicates": sorted(duplicates)}[key]
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
        """Record the positions everything written so far reflects; they reach the disk with it."""
        self.pending.checkpoint = (log_id, dict(positions), set(duplicates))
        self.pending.sealed = True

    async def flush_due(self) -> None:
        """Hand the pending batch to the writer when it is big or old enough; wait while the writer is
        behind and the batch is full (backpressure: memory stays bounded, the fold slows to the disk)."""
        flushing = self._flushing
        if flushing is not None and self.pending.size >= self._max_pending:
            await asyncio.wrap_future(flushing[1])
        if self.failed is not None:
            raise self.failed
        if self._due():
            self._hand_off()

    def _due(self) -> bool:
        batch = self.pending
        if not batch or not batch.sealed or self._flushing is not None:
            return False
        return batch.size >= self._flush_at or time.monotonic() - batch.started >= self._commit_every_s

    def _hand_off(self) -> Future[None]:
        batch, self.pending = self.pending, Batch()
        future = self._writer.write(batch)
        self._flushing = (batch, future)
        future.add_done_callback(lambda done: self._on_disk(batch, done))
        return future

    def _on_disk(self, batch: Batch, done: Future[None]) -> None:
        # Runs on the writer thread. The batch is dropped only once the file holds it: until then every
        # read finds it in memory. A failed write keeps it there and stops the fold (flush_due raises).
        failed = done.exception()
        if failed is not None:
            self.failed = failed
        elif self._flushing is not None and self._flushing[0] is batch:
            self._flushing = None

    def commit(self) -> None:
        """Write everything checkpointed so far and wait until it is on disk."""
        flushing = self._flushing
        if flushing is not None:
            flushing[1].result()
        if self.pending and self.pending.sealed:
            self._hand_off().result()

    def reset(self, log_id: str) -> None:
        """Forget everything: the store is for another log (or another version) and is rebuilt."""
        flushing = self._flushing
        if flushing is not None:
            flushing[1].result()
        self.pending, self._flushing, self.failed = Batch(), None, None
        self._db.close()
        self._writer.forget().result()
        self._open()
        self.checkpoint(log_id, {}, set())
        self.commit()

    def close(self) -> None:
        """Write what was checkpointed (a batch written past its checkpoint is left to the log)."""
        self.commit()
        self._writer.close()
        self._db.close()
        self._lock.close()


_ENTRIES: dict[str, type[_Entries]] = {"timeline": Timeline, "actions": Actions, "missed": Timeline}
