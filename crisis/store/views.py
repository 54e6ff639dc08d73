"""Views of one SQLite store: a crisis's timeline, actions, overdue events and indicators, the verdicts and
the first requests. Each reads the store's pending batches first, then the file (crisis.store.sqlite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from operator import index
from typing import TYPE_CHECKING, SupportsIndex

from crisis.domain.book import FirstRequest, IndicatorRecord, Outcome
from crisis.domain.envelope import Envelope
from crisis.domain.events import ActionReported
from crisis.store.batch import detached
from crisis.store.codec import load_envelope, load_indicator

if TYPE_CHECKING:
    from crisis.store.sqlite import SqliteStorage


class Entries:
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

    def _set(self, position: int, env: Envelope) -> None:
        """Overwrite one entry in place (only erasure does): the batch replaces the row on disk."""
        batch = self._store.pending
        batch.entries[(self._table, self._crisis, position)] = env
        batch.wrote()

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


class Timeline(Entries):
    def append(self, item: Envelope, /) -> None:
        self._append(item)

    def __getitem__(self, position: int, /) -> Envelope:
        return self._get(position)

    def __setitem__(self, position: SupportsIndex, item: Envelope, /) -> None:
        self._set(index(position), item)

    def __iter__(self) -> Iterator[Envelope]:
        return self._iter()


class Actions(Entries):
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
            for indicator_id in list(live):
                # Erased since the file was written: its pending record no longer holds this value.
                for batch in batches:
                    shared = batch.indicators.get((self._crisis, indicator_id))
                    if shared is not None and shared.record.data.canonical != canonical:
                        del live[indicator_id]
                        break
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

    def scrub(self, crisis_id: str, erase: Callable[[Envelope], Envelope | None], /) -> None:
        # Rare (an erasure) and not indexed by crisis: every kept request is looked at.
        kept: dict[tuple[str, int], tuple[str, Envelope]] = {}
        for scope, seq, digest, text in self._store.read("SELECT scope, seq, digest, envelope FROM requests"):
            kept[(scope, seq)] = (digest, load_envelope(text))
        for written in reversed(self._store.batches()):
            for scope, entries in written.requests.items():
                for seq, digest, env in entries:
                    kept[(scope, seq)] = (digest, env)
        batch = self._store.pending
        for (scope, seq), (digest, env) in kept.items():
            if env.subject == crisis_id and (after := erase(env)) is not None:
                batch.requests.setdefault(scope, []).append((seq, digest, after))
                batch.wrote()
