"""Where the fold keeps what grows with history: indicators, timelines, actions, verdicts, first requests.

The fold (crisis.domain.book) reads and writes only through these small interfaces, so the same rules run
over plain dicts and lists (here: unit tests, `memory://`, a process without a state directory) and over a
local store on disk (crisis.store) that a process restores from instead of re-reading the whole log.

A record read from a store may be a copy: whoever changes one writes it back with `put`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol, SupportsIndex, TypeVar

if TYPE_CHECKING:
    from crisis.domain.book import FirstRequest, IndicatorRecord, Outcome
    from crisis.domain.crisis import CrisisState
    from crisis.domain.envelope import Envelope
    from crisis.domain.events import ActionReported

T = TypeVar("T")


class Entries(Protocol[T]):
    """An append-only sequence: a position in it never changes meaning (cursors rely on that)."""

    def append(self, item: T, /) -> None: ...

    def __setitem__(self, position: SupportsIndex, item: T, /) -> None:
        """Overwrite an entry in place: only erasure does, and the entry stays the same event."""

    def __len__(self) -> int: ...

    def __getitem__(self, position: int, /) -> T: ...

    def __iter__(self) -> Iterator[T]: ...


class Indicators(Protocol):
    """One crisis's indicators, in the order they were shared, with the live ones findable by value."""

    def get(self, indicator_id: str, /) -> IndicatorRecord | None: ...

    def __getitem__(self, indicator_id: str, /) -> IndicatorRecord: ...

    def __contains__(self, indicator_id: object, /) -> bool: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[str]:
        """Indicator ids in share order."""

    def add(self, record: IndicatorRecord, /) -> None:
        """A new indicator, after every one so far."""

    def put(self, record: IndicatorRecord, /) -> None:
        """Write back a changed indicator (a sighting, a retraction)."""

    def at(self, position: int, /) -> IndicatorRecord:
        """The indicator shared `position`-th (from 0)."""

    def live(self, kind: str, canonical: str, /) -> list[str]:
        """Ids of the indicators with this value that are not retracted, oldest first."""

    def values(self) -> Iterator[IndicatorRecord]: ...


class Outcomes(Protocol):
    def get(self, event_id: str, /) -> Outcome | None: ...

    def __setitem__(self, event_id: str, outcome: Outcome, /) -> None: ...

    def __getitem__(self, event_id: str, /) -> Outcome: ...

    def __contains__(self, event_id: object, /) -> bool: ...


class Requests(Protocol):
    """Idempotency scope -> the first request made with it."""

    def get(self, scope: str, /) -> FirstRequest | None: ...

    def digest(self, scope: str, /) -> str | None:
        """The first request's digest alone (checked on every keyed event: cheaper than `get`)."""

    def record(self, scope: str, digest: str, env: Envelope, /) -> None:
        """One more event of the first request with `scope` (which starts with `digest`)."""

    def scrub(self, crisis_id: str, erase: Callable[[Envelope], Envelope | None], /) -> None:
        """Overwrite the kept events of `crisis_id` that `erase` changes (it returns None for the others)."""


class Storage(Protocol):
    """Everything the fold keeps, by crisis; crisis states are few and stay in memory beside it."""

    @property
    def outcomes(self) -> Outcomes: ...

    @property
    def requests(self) -> Requests: ...

    def indicators(self, crisis_id: str, /) -> Indicators: ...

    def timeline(self, crisis_id: str, /) -> Entries[Envelope]: ...

    def actions(self, crisis_id: str, /) -> Entries[tuple[Envelope, ActionReported]]: ...

    def missed(self, crisis_id: str, /) -> Entries[Envelope]:
        """The accepted `clock.overdue` events, from which a restored fold rebuilds its overdue map."""

    def save_crisis(self, state: CrisisState, /) -> None: ...

    def crisis_states(self) -> list[CrisisState]:
        """The crises saved so far, in the order they were opened (what a restored fold starts from)."""

    def erased(self) -> None:
        """Values were overwritten by an erasure: make sure no copy of them is left behind on disk."""


class MemoryIndicators:
    """Indicators in a dict (insertion order is share order) and a list of ids for positions."""

    def __init__(self) -> None:
        self._by_id: dict[str, IndicatorRecord] = {}
        self._order: list[str] = []
        # (kind, canonical) -> live ids, oldest first.
        self._live: dict[tuple[str, str], list[str]] = {}

    def get(self, indicator_id: str, /) -> IndicatorRecord | None:
        return self._by_id.get(indicator_id)

    def __getitem__(self, indicator_id: str, /) -> IndicatorRecord:
        return self._by_id[indicator_id]

    def __contains__(self, indicator_id: object, /) -> bool:
        return indicator_id in self._by_id

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def add(self, record: IndicatorRecord, /) -> None:
        indicator_id = record.data.indicator_id
        self._by_id[indicator_id] = record
        self._order.append(indicator_id)
        if not record.retracted:
            self._live.setdefault((str(record.data.kind), record.data.canonical), []).append(indicator_id)

    def put(self, record: IndicatorRecord, /) -> None:
        indicator_id = record.data.indicator_id
        before = self._by_id.get(indicator_id)
        self._by_id[indicator_id] = record
        ids = self._live.get((str(record.data.kind), record.data.canonical), [])
        if record.retracted and indicator_id in ids:
            ids.remove(indicator_id)
        if before is not None and before.data.canonical != record.data.canonical:
            # An erased value: the old value no longer finds this indicator.
            old = self._live.get((str(before.data.kind), before.data.canonical), [])
            if indicator_id in old:
                old.remove(indicator_id)

    def at(self, position: int, /) -> IndicatorRecord:
        return self._by_id[self._order[position]]

    def live(self, kind: str, canonical: str, /) -> list[str]:
        return list(self._live.get((kind, canonical), ()))

    def values(self) -> Iterator[IndicatorRecord]:
        return iter(list(self._by_id.values()))


class MemoryRequests:
    def __init__(self) -> None:
        self._first: dict[str, FirstRequest] = {}

    def get(self, scope: str, /) -> FirstRequest | None:
        return self._first.get(scope)

    def digest(self, scope: str, /) -> str | None:
        first = self._first.get(scope)
        return first.digest if first is not None else None

    def record(self, scope: str, digest: str, env: Envelope, /) -> None:
        from crisis.domain.book import FirstRequest

        self._first.setdefault(scope, FirstRequest(digest)).envelopes.append(env)

    def scrub(self, crisis_id: str, erase: Callable[[Envelope], Envelope | None], /) -> None:
        for first in self._first.values():
            for i, env in enumerate(first.envelopes):
                if env.subject == crisis_id and (after := erase(env)) is not None:
                    first.envelopes[i] = after


class MemoryStorage:
    """The fold's state in this process's memory: grows with the log, lost on exit."""

    def __init__(self) -> None:
        self.outcomes: dict[str, Outcome] = {}
        self.requests = MemoryRequests()

    def indicators(self, crisis_id: str, /) -> MemoryIndicators:
        return MemoryIndicators()

    def timeline(self, crisis_id: str, /) -> list[Envelope]:
        return []

    def actions(self, crisis_id: str, /) -> list[tuple[Envelope, ActionReported]]:
        return []

    def missed(self, crisis_id: str, /) -> list[Envelope]:
        return []

    def save_crisis(self, state: CrisisState, /) -> None:
        """Nothing to do: the Book holds the states."""

    def crisis_states(self) -> list[CrisisState]:
        return []

    def erased(self) -> None:
        """Nothing to do: the overwritten values were only ever in memory."""
