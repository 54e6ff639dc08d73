"""The bus seen through the keys: events are sealed before they are published and opened as they are read.

`seal` is applied by the ledger to what it is about to publish (after it the record is immutable: a chain
hash, or anything else computed over the record, sees the sealed form). Every reader of this bus (the
ledger's fold, the gateway's resume and backfill replays) gets the events opened: plaintext while their
key exists, erased after. `on_folded` forgets the keys an accepted erasure names in every process, and
destroys them in the key store in the processes that write (those running the API): a gateway's Kafka
principal may only read, and the writers' tombstones already make the erasure durable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import structlog

from crisis.bus.base import Bus, Delivered, Position, PublishError, Reader, Topology
from crisis.crypto.keyring import Covers, Keyring
from crisis.crypto.seal import SealError, seal, sealed_kid, unseal
from crisis.domain import sensitive
from crisis.domain.book import Outcome
from crisis.domain.envelope import Envelope, replaced

log = structlog.get_logger(__name__)


class SealedBus:
    # Events this process sealed and not read back yet (a reader elsewhere, a failed send) age out.
    SENT_LIMIT = 200_000

    def __init__(self, bus: Bus, keyring: Keyring, *, destroys: bool = True) -> None:
        self.inner = bus
        self.keyring = keyring
        # False in a process that only reads the log (a gateway): it forgets erased keys, never writes.
        self.destroys = destroys
        self._destroying: set[asyncio.Task[None]] = set()
        # Keys looked for and not found: a key is made before the first event under it is published,
        # so one missing once an event under it was read is destroyed, for good (no second look).
        self._gone: set[str] = set()
        # Sealed event id -> (the sealed envelope, the plain one): the bus's own reader hands back the very
        # object this process published (crisis.bus.kafka.Echo), which need not be opened again.
        self._sent: dict[str, tuple[Envelope, Envelope]] = {}
        # What the erasures folded so far cover: consulted only after a look at the store, so a key this
        # process did not know when its erasure was folded is not learned back from the store.
        self._erased: list[Covers] = []

    async def seal(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """The events as they will be published; a new crisis's or indicator's key is stored first."""
        kids = [sensitive.key_id(env) for env in envelopes]
        wanted = {kid for env, kid in zip(envelopes, kids, strict=True) if kid and sensitive.creates_key(env)}
        if wanted:
            try:
                await self.keyring.create(wanted)
            except PublishError as exc:
                # No key, no event: nothing of this write is in the log.
                raise PublishError(str(exc), [env.id for env in envelopes]) from exc
        out = []
        for env, kid in zip(envelopes, kids, strict=True):
            sealed = seal(env, self.keyring.get(kid), kid) if kid is not None else env
            if sealed is not env:
                self._remember(sealed, env)
            out.append(sealed)
        return out

    def _remember(self, sealed: Envelope, plain: Envelope) -> None:
        self._sent[sealed.id] = (sealed, plain)
        if len(self._sent) > self.SENT_LIMIT:
            del self._sent[next(iter(self._sent))]

    def open_known(self, env: Envelope) -> Envelope | None:
        """`open` without I/O: None when the event's key is not known here (`open` looks for it)."""
        kid = sealed_kid(env)
        if kid is None:
            return env
        # An erased key stays gone here even if a look at the store still finds it (a reader forgets at
        # once; the writer's tombstone may land a moment later).
        if kid in self._gone:
            self._sent.pop(env.id, None)
            return unseal(env, None)
        key = self.keyring.get(kid)
        if key is None:
            return None
        sent = self._sent.pop(env.id, None)
        if sent is not None and sent[0].data is env.data:
            # Exactly what this process sealed (linking into the chain copies the envelope, not its data),
            # and its key still lives: the plain event, with the links it was published with.
            return replaced(sent[1], chainprev=env.chainprev, chainhash=env.chainhash)
        return unseal(env, key)

    async def open(self, env: Envelope) -> Envelope:
        """The event as readers see it; a key not known here yet is looked for before it reads as gone."""
        opened = self.open_known(env)
        if opened is not None:
            return opened
        kid = sealed_kid(env)
        assert kid is not None
        self._sent.pop(env.id, None)
        key = None
        if kid not in self._gone:
            await self.keyring.refresh()
            key = self.keyring.get(kid)
            if key is None or any(covers(kid) for covers in self._erased):
                key = None
                self._gone.add(kid)
        return unseal(env, key)

    def on_folded(self, batch: list[tuple[Delivered, Outcome]]) -> None:
        """A ledger listener: an accepted erasure forgets its keys here at once, and destroys them in the
        store where this process writes."""
        for item, outcome in batch:
            env = item.envelope
            if outcome.accepted and env.type.is_erasure:
                covers = sensitive.erasure_covers(env)
                gone = self.keyring.forget(covers)
                self._gone.update(gone)
                self._erased.append(covers)
                if not self.destroys:
                    log.info("keys_forgotten", crisis=env.subject, type=str(env.type), keys=len(gone))
                    continue
                log.info("keys_destroyed", crisis=env.subject, type=str(env.type), keys=len(gone))
                task = asyncio.get_running_loop().create_task(self.keyring.destroy(covers, gone))
                self._destroying.add(task)
                task.add_done_callback(self._destroying.discard)

    async def settled(self) -> None:
        """Wait until every key destruction begun so far is durable."""
        if self._destroying:
            await asyncio.gather(*list(self._destroying))

    # The Bus port, delegated; reads opened.

    async def publish(self, envelopes: Sequence[Envelope]) -> list[Position]:
        return await self.inner.publish(envelopes)

    async def describe(self) -> Topology:
        return await self.inner.describe()

    async def healthy(self) -> bool:
        return await self.inner.healthy()

    @asynccontextmanager
    async def reader(self, start: Mapping[int, int] | None = None) -> AsyncIterator[OpenedReader]:
        async with self.inner.reader(start) as reader:
            yield OpenedReader(reader, self)


class OpenedReader:
    """A reader whose events come opened (crisis.crypto.seal.unseal)."""

    def __init__(self, reader: Reader, bus: SealedBus) -> None:
        self._reader = reader
        self._bus = bus

    async def next_batch(self, timeout: float, limit: int | None = None) -> list[Delivered]:
        batch = await self._reader.next_batch(timeout, limit)
        out = []
        for item in batch:
            try:
                # Without a coroutine per event where no key has to be looked for (nearly always).
                env = self._bus.open_known(item.envelope)
                if env is None:
                    env = await self._bus.open(item.envelope)
            except SealError as exc:
                # As for any record that is not a valid event of ours: skipped, and said so.
                log.warning("record_skipped", partition=item.partition, offset=item.offset, error=str(exc))
                continue
            out.append(item if env is item.envelope else Delivered(env, item.partition, item.offset))
        return out

    def ends(self) -> dict[int, int]:
        return self._reader.ends()

    def caught_up(self) -> bool:
        return self._reader.caught_up()

    def behind(self) -> int:
        return self._reader.behind()
