"""The data keys on Kafka: a compacted topic `<topic>.keys` of one partition, one record per batch of keys.

The keys made together (a batch of shares) are one record, record key `batch/<uuid4 hex>`, value a JSON
object {key id: base64 key} (crisis.bus.key_records). Destroying a key writes its batch again under the
same record key with the keys that remain, or a tombstone when none remain. Records of the first format,
one per key (record key = key id), are still read, and a tombstone still destroys such a key. Each destroyed
key also gets a marker record `gone/<key id>` in the same acknowledged send, kept by compaction for good:
every reader drops that key for good, and a process that destroys writes again any batch still holding it.

Every process reads the topic at start and follows it after, and reads to the end again whenever an
event names a key it does not hold. A process with a local store (`state_dir`) keeps what it read in its key
file (crisis.crypto.keycache: the keys, which record holds each, the offset read up to) and starts reading
from that offset; one without reads the whole topic and holds every key in memory.

A record without a key removes it from every reader at once; from the topic's own segments the older record
goes when the log cleaner compacts them, which these settings keep short: a segment rolls after SEGMENT_MS,
any dirty ratio is cleaned, and a tombstone itself goes DELETE_RETENTION_MS later. The broker's
`log.cleaner.backoff.ms` (15 s by default) adds to that bound; a replica on a stopped broker keeps its copy
until it rejoins and compacts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, KafkaTimeoutError

from crisis.bus.base import PublishError
from crisis.bus.kafka import log_outcome
from crisis.bus.kafka_security import connection_options
from crisis.bus.key_records import (
    MARKER,
    RECORD_KEYS,
    Batches,
    RecordError,
    StoredBatches,
    decode,
    encode,
    marked,
    marker,
    new_batch,
)
from crisis.config import Settings
from crisis.crypto.keycache import KeyFile
from crisis.crypto.keyring import CACHE_KEYS, Covers, MemoryKeyring
from crisis.crypto.seal import new_key

log = structlog.get_logger(__name__)

SEGMENT_MS: Final = 60_000
DELETE_RETENTION_MS: Final = 60_000
TOPIC_CONFIG: Final = {
    "cleanup.policy": "compact",
    "segment.ms": str(SEGMENT_MS),
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": str(DELETE_RETENTION_MS),
    "min.compaction.lag.ms": "0",
}


def keys_topic(settings: Settings) -> str:
    return f"{settings.kafka_topic}.keys"


class KafkaKeyring(MemoryKeyring):
    """Keys on a compacted topic of one partition, cached in memory."""

    def __init__(
        self,
        settings: Settings,
        *,
        destroys: bool = False,
        state_dir: Path | None = None,
        cache: int = CACHE_KEYS,
    ) -> None:
        super().__init__(cache=cache)
        self._s = settings
        self._state_dir = state_dir
        self._cluster_id = ""
        self.topic = keys_topic(settings)
        self._tp = TopicPartition(self.topic, 0)
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reading = asyncio.Lock()
        self._tail: asyncio.Task[None] | None = None
        self._batches: Batches = Batches()
        # Batches this process wrote and has not read back yet (record key -> value): skipped when read.
        self._made: dict[str, bytes] = {}
        # Only a process that destroys keys (said at start, or by its first destroy) writes a stale batch
        # again: a gateway only reads.
        self._destroys = destroys
        self._writing: set[str] = set()  # batches being written again, not acknowledged yet
        # Keys destroyed here whose marker is not acknowledged yet (a failed send is tried again), and those
        # of them being written.
        self._unmarked: set[str] = set()
        self._marking: set[str] = set()
        self._read_to = 0  # the offset up to which records are taken in
        # The key file's inserts of this process's new batches run on a thread of their own (random key ids:
        # ~18 ms a thousand, which the event loop would otherwise spend): those in flight, and the offset
        # last saved as read. Meanwhile the key file's read offset is not saved past them (a crash would
        # leave their keys out of the file for good), and whatever reads the file to destroy keys, or
        # closes it, first waits for them.
        self._filing: set[Future[None]] = set()
        self._filer: ThreadPoolExecutor | None = None
        self._saved_to = 0
        self._advanced = asyncio.Event()  # set (and replaced) each time the follower has read

    def _common(self) -> dict[str, Any]:
        # The same connection as the event topic's clients: TLS and SASL from Settings.
        return connection_options(self._s)

    async def __aenter__(self) -> KafkaKeyring:
        await self._ensure_topic()
        self._producer = AIOKafkaProducer(
            **self._common(), acks="all", enable_idempotence=self._s.kafka_idempotence
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            **self._common(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # A missing key holds up the fold that needs it: its fetch must not sit in a long poll.
            fetch_max_wait_ms=self._s.kafka_fetch_wait_ms,
        )
        await self._consumer.start()
        self._consumer.assign([self._tp])
        start = await self._start_at()
        await self.refresh()
        log.info("keys_restored", topic=self.topic, start=start, read_to=self._read_to)
        self._tail = asyncio.create_task(self._follow(), name="keys-tail")
        return self

    async def _start_at(self) -> int:
        """Read from the key file's offset when the process keeps one for this topic, else from the start;
        returns that offset."""
        assert self._consumer is not None
        if self._state_dir is not None:
            self.local = KeyFile(self._state_dir, f"kafka:{self._cluster_id}/{self.topic}")
            self._batches = StoredBatches(self.local)
            at = self.local.position()
            end = (await self._consumer.end_offsets([self._tp]))[self._tp]
            if at is not None and at > end:
                # The topic was made again beneath the file: the file describes another one.
                log.warning("key_file_rebuilt", reason="the file is ahead of the topic", topic=self.topic)
                self.local.reset()
                self._batches = StoredBatches(self.local)
                at = None
            if at is not None:
                self._consumer.seek(self._tp, at)
                self._read_to = self._saved_to = at
                return at
        await self._consumer.seek_to_beginning(self._tp)
        return 0

    async def _follow(self) -> None:
        """Read new keys as they come: a key is written before the first event under it, so another
        process's events usually find their key here already, without a round trip of their own."""
        assert self._consumer is not None
        while True:
            try:
                async with self._reading:
                    await self._read(self._s.kafka_fetch_wait_ms)
                stale, unmarked = self._batches.stale - self._writing, self._unmarked - self._marking
                if self._destroys and (stale or unmarked):
                    await self._write_again(stale, unmarked)
                await asyncio.sleep(0)  # a waiting refresh() gets the lock between fetches
            except asyncio.CancelledError:
                raise
            except (KafkaError, PublishError) as exc:
                log.warning("keys_tail_failed", error=str(exc))
                await asyncio.sleep(1)

    async def _read(self, timeout_ms: int) -> None:
        assert self._consumer is not None
        records = (await self._consumer.getmany(self._tp, timeout_ms=timeout_ms)).get(self._tp, [])
        # The key file only for records of other processes (this process's own are filed by create()): a
        # fetch of its own records never waits for the file while a batch is being filed.
        others = any(not self._own(record) for record in records)
        with self.local.batch() if self.local is not None and others else contextlib.nullcontext():
            self._apply(records)
        read_to = await self._consumer.position(self._tp)
        if self.local is not None and read_to != self._saved_to and not self._filing:
            self.local.read_to(read_to)
            self._saved_to = read_to
        self._read_to = read_to
        advanced, self._advanced = self._advanced, asyncio.Event()
        advanced.set()

    def _apply(self, records: list[Any]) -> None:
        for record in records:
            name = (record.key or b"").decode()
            gone = marked(name)
            if gone is not None:
                # Final, whatever this process read before or reads after: a marker is never taken back.
                self.keys.pop(gone, None)
                self._batches.gone(gone)
                self._unmarked.discard(gone)  # on the topic already, by whichever process wrote it
                continue
            if self._own(record):
                del self._made[name]  # written here, and already taken in
                continue
            try:
                keys = decode(name, record.value)
            except RecordError as exc:
                log.warning("keys_record_skipped", offset=record.offset, error=str(exc))
                continue
            live, drop = self._batches.read(name, keys, record.offset)
            for kid in drop:
                self.keys.pop(kid, None)
            self._hold(live)

    async def __aexit__(self, *exc: object) -> None:
        if self._tail is not None:
            self._tail.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tail
        # Stopped even when the broker is gone: what is left to send or fetch is not needed any more.
        for client in (self._producer, self._consumer):
            if client is not None:
                await _stop(client)
        if self.local is not None:
            self._filed()
            if self._filer is not None:
                self._filer.shutdown()
            if self._read_to != self._saved_to:
                self.local.read_to(self._read_to)  # nothing is in flight any more
            self.local.close()

    async def _ensure_topic(self) -> None:
        admin = AIOKafkaAdminClient(**self._common())
        await admin.start()
        try:
            if self._state_dir is not None:
                # The key file says which cluster's topic it reflects (the fold's store does the same).
                self._cluster_id = str((await admin.describe_cluster()).get("cluster_id") or "")
            topic = NewTopic(self.topic, 1, self._s.kafka_replication, topic_configs=dict(TOPIC_CONFIG))
            response = await admin.create_topics([topic])
        finally:
            await admin.close()
        log_outcome(response, self.topic, config=TOPIC_CONFIG)

    async def refresh(self) -> None:
        """Read the topic up to its current end: keys made and destroyed by every process."""
        assert self._consumer is not None
        # The end as the broker answers now (ListOffsets). Some brokers answer less after a record batch
        # of several records (Tansu: the offset after the batch's first record): reading to it still reads
        # that whole batch, and the fetch high-watermark is taken when higher. The high-watermark alone
        # is not enough: a fetch answered after this call began may have been held since before the
        # last write, with the high-watermark of then.
        end = (await self._consumer.end_offsets([self._tp]))[self._tp]
        began = time.time() * 1000
        while self._read_to < max(end, self._consumer.highwater(self._tp) or 0):
            polled = self._consumer.last_poll_timestamp(self._tp) or 0
            if time.time() * 1000 - max(began, polled) > self._s.kafka_request_timeout_ms:
                # No fetch answered for that long: a key missing now is not known to be gone.
                raise KafkaTimeoutError(f"the keys topic did not answer a fetch: {self.topic}")
            if self._tail is None or self._tail.done():
                async with self._reading:  # at start, before the follower reads
                    await self._read(self._s.kafka_fetch_wait_ms)
            else:
                # The follower takes in what the fetches bring, and reads again within fetch_max_wait_ms.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.1):
                        await self._advanced.wait()

    async def _send(self, items: dict[str, bytes | None]) -> dict[str, int]:
        """Write records (None: a tombstone), acknowledged by every in-sync replica, or raise PublishError;
        returns their offsets."""
        assert self._producer is not None
        try:
            async with asyncio.timeout(self._s.publish_timeout_s):
                futures = [
                    await self._producer.send(self.topic, value, key=name.encode(), partition=0)
                    for name, value in items.items()
                ]
                written = await asyncio.gather(*futures)
                return {name: meta.offset for name, meta in zip(items, written, strict=True)}
        except (KafkaError, TimeoutError) as exc:
            # Before the events that need them are published: those are not written either.
            raise PublishError(f"the data keys could not be written: {type(exc).__name__}") from exc

    def _own(self, record: Any) -> bool:
        """A batch this process wrote, as it wrote it."""
        name = (record.key or b"").decode()
        return name in self._made and self._made[name] == record.value

    async def create(self, kids: Collection[str]) -> None:
        while self._filing:  # the file is asked below: not while it is busy filing (the loop would wait)
            await asyncio.wait([asyncio.wrap_future(f) for f in list(self._filing)])
        fresh = self._missing(kids)
        if not fresh:
            return
        made = {kid: new_key() for kid in fresh}
        records: dict[str, dict[str, bytes]] = {}
        for at in range(0, len(fresh), RECORD_KEYS):
            records[new_batch()] = {kid: made[kid] for kid in fresh[at : at + RECORD_KEYS]}
        values = {name: encode(keys) for name, keys in records.items()}
        self._made.update({name: value for name, value in values.items() if value is not None})
        try:
            offsets = await self._send(values)
        except PublishError:
            for name in records:
                self._made.pop(name, None)
            raise
        self._hold(made)  # sealed right after: a dict lookup each
        if self.local is None:
            for name, keys in records.items():
                self._batches.wrote(name, keys, offsets[name], keys)
            return
        if self._filer is None:
            self._filer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keys-file")
        filing = self._filer.submit(self._file, records, offsets)
        self._filing.add(filing)
        try:
            await asyncio.wrap_future(filing)
        finally:
            self._filing.discard(filing)

    def _file(self, records: dict[str, dict[str, bytes]], offsets: dict[str, int]) -> None:
        with self.local.batch() if self.local is not None else contextlib.nullcontext():
            for name, keys in records.items():
                self._batches.wrote(name, keys, offsets[name], keys)

    def _filed(self) -> None:
        """Wait until the key file holds every batch this process has made (see _filing)."""
        if self._filing:
            wait(list(self._filing))

    def forget(self, covers: Covers) -> list[str]:
        self._filed()  # the keys it covers may be in a batch still being filed
        # Never taken back from the topic either, even from a record a process behind writes again.
        if covers not in self._batches.erased:
            self._batches.erased.append(covers)
        gone = super().forget(covers)
        self._batches.forgot(gone)
        return gone

    async def destroy(self, covers: Covers, known: Collection[str] = ()) -> None:
        self._destroys = True
        kids = {*known, *self.forget(covers)}
        gone = self._batches.unmarked(self._batches.doomed(kids, covers))
        self._unmarked |= gone
        records = self._batches.destroy(kids, covers)
        if records or gone:
            await self._write_again(records, gone)

    async def _write_again(self, names: set[str], gone: set[str]) -> None:
        """Write batches again without their dead keys (a tombstone when none remain), after the markers
        of the keys `gone`."""
        self._filed()
        values: dict[str, bytes | None] = dict.fromkeys(map(marker, sorted(gone)), MARKER)
        # Markers first, in the same send: a reader that finds a batch written again also finds why.
        kept_keys = {name: self._batches.kept_keys(name, self.keys) for name in sorted(names)}
        values.update({name: encode(keys) for name, keys in kept_keys.items()})
        self._writing |= names
        self._marking |= gone
        try:
            offsets = await self._send(values)
        finally:
            self._writing -= names
            self._marking -= gone
        self._batches.marked_now(gone)
        self._unmarked -= gone
        for name, keys in kept_keys.items():
            self._batches.wrote(name, keys, offsets[name], keys)


async def _stop(client: AIOKafkaProducer | AIOKafkaConsumer) -> None:
    """Stop a client whose broker may be gone. A consumer whose fetch failed that way ends its fetcher
    with a CancelledError of its own: swallowed, unless this task itself is being cancelled."""
    try:
        await client.stop()
    except KafkaError:
        pass
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
