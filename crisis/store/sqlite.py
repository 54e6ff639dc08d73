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
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

from crisis.domain.crisis import CrisisState
from crisis.domain.enums import EventType
from crisis.domain.envelope import Envelope
from crisis.store.batch import Batch
from crisis.store.values import Values, scan
from crisis.store.views import Actions, Entries, Indicators, Outcomes, Requests, Timeline
from crisis.store.writer import VERSION, Writer, connect


class StoreBusy(RuntimeError):
    """Another process holds this state directory."""


# Keys remembered absent, at most: a few batches' worth.
_ABSENT_MAX = 100_000


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
        empty = self._db.execute("SELECT 1 FROM indicators LIMIT 1").fetchone() is None
        self.values = Values(empty=empty)
        self._crisis_seq: dict[str, int] = dict(self._db.execute("SELECT id, seq FROM crises").fetchall())
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if meta and meta.get("version") != json.dumps(VERSION):
            self.reset("")

    def warm(self) -> None:
        """The process has caught up with the log: build the value filter now (off the path to ready)."""
        if not self.values.scanned:
            self.values.scan(self._writer.call(scan))

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

    def fresh(self, envelopes: Sequence[Envelope]) -> None:
        """`prefetch` for events whose ids were just made at random (a write without an Idempotency-Key):
        no event and no indicator can hold them yet, so the file is not asked. A sighting names an
        indicator of its own: only a share's id is its new indicator's."""
        absent = self.absent
        if len(absent) > _ABSENT_MAX:
            absent.clear()
        for env in envelopes:
            absent.add(env.id)
            if env.type is EventType.INDICATOR_SHARED and env.data.get("indicator_id") == env.id:
                absent.add((env.subject, env.id))

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

    def erased(self) -> None:
        """An erasure overwrote values: the batch holding the overwrites goes to disk at the next
        checkpoint, and the WAL's copies of the old pages are emptied after it."""
        self.pending.wipe = True
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
        return (
            batch.wipe
            or batch.size >= self._flush_at
            or time.monotonic() - batch.started >= self._commit_every_s
        )

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


_ENTRIES: dict[str, type[Entries]] = {"timeline": Timeline, "actions": Actions, "missed": Timeline}
