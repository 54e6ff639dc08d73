"""The log folded live: one reader loop per process keeps a Book current and tells writers the verdict.

A write is: publish (Kafka acknowledges), then wait until this process's own reader has folded the event.
Every process folds the same log with the same rules, so the verdict is the same everywhere.

With a local store (crisis.store) the Book lives on disk beside the log id and positions it reflects:
a process restores from it and reads only the tail. A store of another log (a wiped journal: another
log id) or one ahead of the log (the reader finds itself sent back to earlier offsets) is discarded and
rebuilt from the beginning.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import Protocol

import structlog

from crisis.bus.base import Bus, Delivered, PublishError, PublishUnknown, Reader
from crisis.domain import chain
from crisis.domain.book import Book, Outcome
from crisis.domain.chain import CHAIN_CONFLICT
from crisis.domain.envelope import Envelope
from crisis.domain.storage import Storage

log = structlog.get_logger(__name__)

# How many times a write is linked again after other writers got in ahead on the same crisis.
CHAIN_ATTEMPTS = 16

Listener = Callable[[list[tuple[Delivered, Outcome]]], None]

# Events decoded and folded at once: catching up on a long log, a fetch holds megabytes of records per
# partition, and decoding them all at once would hold them all as objects.
FOLD_LIMIT = 2000


class LocalStore(Storage, Protocol):
    """Storage that outlives the process, with the checkpoint it reflects (crisis.store.sqlite)."""

    @property
    def log_id(self) -> str | None: ...

    def positions(self) -> dict[int, int]: ...

    def duplicates(self) -> set[tuple[int, int]]: ...

    def checkpoint(
        self, log_id: str, positions: dict[int, int], duplicates: set[tuple[int, int]]
    ) -> None: ...

    def reset(self, log_id: str) -> None: ...

    async def flush_due(self) -> None:
        """Write what was checkpointed when due; wait while too much waits to be written."""

    def prefetch(self, envelopes: Sequence[Envelope]) -> None:
        """Look up at once what folding or writing these events will ask about each."""

    def fresh(self, envelopes: Sequence[Envelope]) -> None:
        """What `prefetch` would find for events whose ids were just made at random: nothing."""

    def warm(self) -> None:
        """The fold has caught up with the log: build what only makes later reads cheaper."""


class Sealer(Protocol):
    """What is applied to events before they are published (crisis.crypto.sealed.SealedBus)."""

    async def seal(self, envelopes: Sequence[Envelope]) -> list[Envelope]: ...

    async def settled(self) -> None:
        """Wait until what accepted erasures destroy is destroyed for good."""
        ...


# Partition -> the offset after the last event written in this context (a request of the API sets a dict
# here and answers it as a token: crisis.positions); None where nobody asks.
_WRITTEN: ContextVar[dict[int, int] | None] = ContextVar("crisis_written", default=None)


@contextlib.contextmanager
def recording_writes() -> Iterator[dict[int, int]]:
    """The log positions every write made within the block reached, filled as they are acknowledged."""
    written: dict[int, int] = {}
    token = _WRITTEN.set(written)
    try:
        yield written
    finally:
        _WRITTEN.reset(token)


class _Rebuild(Exception):
    """The store is ahead of the log: start again from the beginning."""


class Ledger:
    def __init__(
        self,
        bus: Bus,
        *,
        verdict_timeout: float = 8.0,
        poll: float = 0.5,
        store: LocalStore | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self.bus = bus
        self.sealer = sealer
        self.store = store
        self.book = Book(store)
        self._log_id = ""
        self.caught_up = asyncio.Event()
        self.listeners: list[Listener] = []
        self.positions: dict[int, int] = {}
        # The end of each partition as of this reader's last fetch (its high-watermark): no position in
        # the log lies beyond it, so a cursor that does is from another log.
        self.ends: dict[int, int] = {}
        # Where a repeated event id sits in the log (a retried write): never delivered. Rare, so small.
        self.duplicates: set[tuple[int, int]] = set()
        # Event id -> the write waiting for its verdict (one per write, not one per event).
        self._waiters: dict[str, _Verdicts] = {}
        # Crisis id -> the chainhash of the last event this process linked and has not folded yet: the
        # next write on that crisis links after it, so concurrent writes in one process form one line
        # instead of all taking the same head (of which only one can win).
        self._tips: dict[str, str] = {}
        # Requests waiting until the fold reaches the positions they name (until_folded).
        self._position_waiters: list[tuple[dict[int, int], asyncio.Future[None]]] = []
        self._verdict_timeout = verdict_timeout
        self._poll = poll
        self.failed: BaseException | None = None
        # What lag() reads: the reader (its high-watermarks), the time of the last folded event and the
        # last moment nothing fetched was left unfolded.
        self._reader: Reader | None = None
        self.last_event_time: datetime | None = None
        self._current_at = time.time()

    async def _restore(self) -> dict[int, int] | None:
        """Where to start reading: the store's positions when it reflects this log, else the beginning."""
        if self.store is None:
            return None
        topology = await self.bus.describe()
        # A cluster holds many topics: the store reflects one topic of one log.
        self._log_id = f"{topology.log_id}/{topology.topic}"
        if self.store.log_id != self._log_id:
            log.info("store_rebuilt", reason="another log", log_id=self._log_id)
            self.store.reset(self._log_id)
        self.book = Book(self.store)
        self.positions = self.store.positions()
        self.duplicates = self.store.duplicates()
        log.info("store_restored", crises=len(self.book.crises), positions=self.positions)
        return dict(self.positions) or None

    async def run(self) -> None:
        """Fold the log (from the store's positions, or its start) forever; returns only when cancelled."""
        try:
            while True:
                try:
                    await self._read(await self._restore())
                except _Rebuild:
                    log.warning("store_rebuilt", reason="the store is ahead of the log")
                    assert self.store is not None
                    self.store.reset(self._log_id)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.failed = exc
            log.exception("ledger_failed")
            raise

    async def _read(self, start: dict[int, int] | None) -> None:
        async with self.bus.reader(start) as reader:
            self._reader = reader
            while True:
                batch = await reader.next_batch(self._poll, FOLD_LIMIT)
                self.ends = reader.ends()
                if batch:
                    for item in batch if start else ():
                        # A partition's first event lies before the stored position: the log was reset
                        # beneath the store (aiokafka starts again from the earliest offset).
                        expected = start.pop(item.partition, None) if start else None
                        if expected is not None and item.offset < expected:
                            raise _Rebuild
                    self._fold(batch)
                    self.last_event_time = batch[-1].envelope.time
                if self.store is not None:
                    await self.store.flush_due()
                if not reader.behind():
                    self._current_at = time.time()
                if reader.caught_up() and not self.caught_up.is_set():
                    log.info("ledger_caught_up", crises=len(self.book.crises))
                    self.caught_up.set()
                    if self.store is not None:
                        self.store.warm()

    def _fold(self, batch: list[Delivered]) -> None:
        folded = []
        if self.store is not None:
            self.store.prefetch([item.envelope for item in batch])
        for item in batch:
            outcome = self.book.apply(item.envelope)
            env = item.envelope
            if env.chainhash is not None and self._tips.get(env.subject) == env.chainhash:
                del self._tips[env.subject]  # folded: the book's head is current again
            self.positions[item.partition] = item.offset + 1
            if outcome.duplicate:
                self.duplicates.add((item.partition, item.offset))
            waiter = self._waiters.pop(item.envelope.id, None)
            if waiter is not None:
                waiter.settle(item.envelope.id, outcome)
            folded.append((item, outcome))
        if self.store is not None:
            self.store.checkpoint(self._log_id, self.positions, self.duplicates)
        for wanted, reached in self._position_waiters:
            if not reached.done() and self.folded_to(wanted):
                reached.set_result(None)
        for listener in self.listeners:
            listener(folded)

    def folded_to(self, positions: dict[int, int]) -> bool:
        """Whether this process has folded the log up to `positions` (partition -> next offset)."""
        return all(self.positions.get(p, 0) >= offset for p, offset in positions.items())

    async def until_folded(self, positions: dict[int, int], timeout: float) -> bool:
        """Wait until the log is folded up to `positions`; False when `timeout` seconds pass first (a
        position of another log, or beyond this one's end, is never reached)."""
        if self.folded_to(positions):
            return True
        reached = asyncio.get_running_loop().create_future()
        waiting = (positions, reached)
        self._position_waiters.append(waiting)
        try:
            async with asyncio.timeout(timeout):
                await reached
            return True
        except TimeoutError:
            return False
        finally:
            self._position_waiters.remove(waiting)

    def lag(self) -> tuple[int, float]:
        """Events in the log not folded yet, and for how many seconds the fold has been behind (0: current).

        The seconds count from the later of the last folded event's time and the last moment the fold was
        current: a fold briefly behind after a quiet hour reads as briefly behind, not an hour.
        """
        events = self._reader.behind() if self._reader is not None else 0
        if not events:
            return 0, 0.0
        since = self._current_at
        if self.last_event_time is not None:
            since = max(since, self.last_event_time.timestamp())
        return events, max(0.0, time.time() - since)

    async def write(self, envelopes: Sequence[Envelope], *, new_ids: bool = False) -> list[Outcome]:
        """Publish and return each event's verdict. A retried event id returns its first verdict.

        `new_ids`: the event ids were made at random for this write (no Idempotency-Key), so no verdict
        can exist for them yet and the store is not asked.

        Each event is linked into its crisis's hash chain at the head this process has folded; an event
        another writer got in ahead of is refused by every fold (`chain_conflict`) and published again,
        same id, on the new head. A refused event is never reported accepted, and an accepted id is never
        taken twice (the fold ignores a repeated id).

        Raises PublishError when Kafka refused, PublishUnknown when the outcome is not known:
        both carry the event ids, and a retry with the same ids never makes a second event.
        """
        verdicts: dict[str, Outcome] = {}
        pending = []
        if self.store is not None:
            (self.store.fresh if new_ids else self.store.prefetch)(envelopes)
        for env in envelopes:
            # A reused Idempotency-Key is refused before publishing: the first request's fingerprint is
            # in the folded log, whichever process took it.
            known = self.book.reused_key(env) or (None if new_ids else self.book.outcomes.get(env.id))
            if known is not None:
                verdicts[env.id] = known
            else:
                pending.append(env)
        if pending and self.sealer is not None:
            # Sealed here, once, before linking: the chain covers what is published (ciphertext), and
            # what is published is never changed again (erasure destroys keys, never records).
            pending = await self.sealer.seal(pending)
        for _attempt in range(CHAIN_ATTEMPTS):
            if not pending:
                break
            linked, outcomes = await self._publish(pending)
            pending = []
            for env, outcome in zip(linked, outcomes, strict=True):
                verdicts[env.id] = outcome
                if outcome.code == CHAIN_CONFLICT:
                    pending.append(env)
            if pending:
                log.info("chain_relinked", events=len(pending), attempt=_attempt + 1)
        if self.sealer is not None and any(env.type.is_erasure for env in envelopes):
            await self.sealer.settled()  # an erasure is answered once its keys are gone for good
        return [verdicts[env.id] for env in envelopes]

    def _link(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """The events stamped into their crises' chains, in order, from the heads folded so far."""
        linked = []
        for env in envelopes:
            head = self._tips.get(env.subject) or self.book.chain_head(env.subject)
            stamped = chain.stamp(env, head)
            assert stamped.chainhash is not None
            self._tips[env.subject] = stamped.chainhash
            linked.append(stamped)
        return linked

    async def _publish(self, envelopes: Sequence[Envelope]) -> tuple[list[Envelope], list[Outcome]]:
        """The events linked, published, and their verdicts."""
        loop = asyncio.get_running_loop()
        # No await between linking and the publish call: the bus sends successive calls' records in
        # call order (KafkaBus under one lock, MemoryBus at once), so writes reach a crisis's partition in
        # the order they were linked. Should a record still land out of order, the fold refuses what
        # follows it and the writers link those events again.
        linked = self._link(envelopes)
        verdicts = _Verdicts(loop.create_future(), len({env.id for env in linked}))
        waiters = self._waiters
        for env in linked:
            waiting = waiters.get(env.id)
            if waiting is None:
                waiters[env.id] = verdicts
            elif waiting is not verdicts:  # the same id in flight in another write (a retry): both hear it
                waiting.also.setdefault(env.id, []).append(verdicts)
        try:
            placed = await self.bus.publish(linked)
        except PublishError:
            # Perhaps never in the log: link the next write on what has been folded.
            for env in linked:
                if waiters.get(env.id) is verdicts:
                    del waiters[env.id]
                if self._tips.get(env.subject) == env.chainhash:
                    del self._tips[env.subject]
            raise
        written = _WRITTEN.get()
        if written is not None:
            for at in placed:
                if at.offset >= written.get(at.partition, 0):
                    written[at.partition] = at.offset + 1
        try:
            async with asyncio.timeout(self._verdict_timeout):
                outcomes = await verdicts.future
            return linked, [outcomes[env.id] for env in linked]
        except TimeoutError as exc:
            raise PublishUnknown(
                "Kafka acknowledged the write but its verdict is not known yet", [e.id for e in linked]
            ) from exc
        finally:
            # An event that lands later is still folded; only its waiter goes.
            for env in linked:
                if waiters.get(env.id) is verdicts:
                    del waiters[env.id]


class _Verdicts:
    """The verdicts one write waits for: its future is done once every event of it has been folded."""

    __slots__ = ("also", "future", "left", "outcomes")

    def __init__(self, future: asyncio.Future[dict[str, Outcome]], events: int) -> None:
        self.future = future
        self.left = events
        self.outcomes: dict[str, Outcome] = {}
        # Event id -> other writes waiting for the verdict of the same event (rare: a retry in flight).
        self.also: dict[str, list[_Verdicts]] = {}

    def settle(self, event_id: str, outcome: Outcome) -> None:
        if event_id not in self.outcomes:
            self.outcomes[event_id] = outcome
            self.left -= 1
            if not self.left and not self.future.done():
                self.future.set_result(self.outcomes)
        for other in self.also.pop(event_id, ()):
            other.settle(event_id, outcome)
