"""The bus on Kafka (aiokafka). The only module that imports aiokafka."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    for_code,
)
from aiokafka.protocol.metadata import MetadataRequest

from crisis.bus.base import Delivered, Position, PublishError, PublishUnknown, Topology
from crisis.bus.codec import RawRecord, decode, encode
from crisis.bus.journal import FILLER_HEADER, Entry, Journal, JournalError, by_partition, with_fillers
from crisis.bus.kafka_security import KafkaRefused, connection_options, describe_failure
from crisis.config import Settings
from crisis.domain.envelope import Envelope

log = structlog.get_logger(__name__)

# Errors after which the record may nevertheless be in the log: the caller must hear "unknown", not "failed".
_UNKNOWN = (KafkaTimeoutError, RequestTimedOutError, TimeoutError)


# Publishes of this many records or more go as record batches built here (KafkaBus._send).
BATCH_FROM = 64
# A write of 1,000 shares is about 1.2 MB of records: in batches of 256 KiB it took five produce requests,
# one after another (a partition has one batch in flight at a time), and a write waited ~0.9 s for them
# behind the others; in batches this size, two (0.36 s; bench/ingest.py --store, +30% indicators/s). Kept
# under Apache Kafka's default largest batch (message.max.bytes, 1 MiB and 12 bytes).
BATCH_BYTES = 1_000_000


class KafkaBus:
    """acks=all; every event keyed by its crisis id, so one crisis lives in one partition, in order."""

    def __init__(self, settings: Settings) -> None:
        self._s = settings
        self.topic = settings.kafka_topic
        self._producer: AIOKafkaProducer | None = None
        self._cluster_id = ""
        self._echo = Echo()
        self._journal: Journal | None = None
        # Records of successive publish calls are sent in call order, never interleaved: a writer that
        # links events into a hash chain (the ledger) relies on it. Only sending is serialised, not acks.
        self._sending = asyncio.Lock()

    def _common(self) -> dict[str, Any]:
        return connection_options(self._s)

    async def __aenter__(self) -> KafkaBus:
        await self.ensure_topic()
        if self._s.kafka_journal_dir is not None:
            self._journal = Journal(self._s.kafka_journal_dir).open()
        self._producer = AIOKafkaProducer(
            **self._common(),
            acks="all",
            enable_idempotence=self._s.kafka_idempotence,
            linger_ms=self._s.kafka_linger_ms,
            max_batch_size=BATCH_BYTES,
        )
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    async def ensure_topic(self) -> None:
        """Create the topic with the configured partitions and replication; an existing one is kept."""
        admin = AIOKafkaAdminClient(**self._common())
        try:
            await admin.start()
        except (KafkaError, KeyError, OSError) as exc:
            with contextlib.suppress(Exception):
                await admin.close()
            raise await refusal(self._s, exc) from exc
        try:
            cluster = await admin.describe_cluster()
            self._cluster_id = str(cluster.get("cluster_id") or "")
            topic = NewTopic(self.topic, self._s.kafka_partitions, self._s.kafka_replication)
            response = await admin.create_topics([topic])
        finally:
            await admin.close()
        log_outcome(response, self.topic, partitions=self._s.kafka_partitions)

    async def publish(self, envelopes: Sequence[Envelope]) -> list[Position]:
        if self._producer is None:
            raise PublishError("the Kafka producer is not running", [e.id for e in envelopes])
        ids = [e.id for e in envelopes]
        try:
            async with asyncio.timeout(self._s.publish_timeout_s):
                records = [encode(env) for env in envelopes]
                self._echo.remember(envelopes, records)  # before its reader can meet them
                async with self._sending:
                    queued = await self._send(records)
                sent = list(dict.fromkeys(future for future, _, _ in queued))
                # Every batch awaited (gather retrieves each failure), then each record's place in it.
                done = dict(zip(sent, await asyncio.gather(*sent), strict=True))
                metadata = [
                    _sent(done[future], partition, appended) for future, partition, appended in queued
                ]
                if self._journal is not None:
                    await self._make_durable(records, metadata)
        except _UNKNOWN as exc:
            raise PublishUnknown(f"Kafka did not acknowledge in time: {type(exc).__name__}", ids) from exc
        except KafkaError as exc:
            raise PublishUnknown(f"Kafka write failed: {type(exc).__name__}: {exc}", ids) from exc
        except (JournalError, OSError) as exc:
            # In the broker but not on disk: a crash now would lose it, so its writer must not hear success.
            raise PublishUnknown(f"the embedded log could not be made durable: {exc}", ids) from exc
        return [Position(m.partition, m.offset) for m in metadata]

    async def _send(self, records: Sequence[RawRecord]) -> list[Queued]:
        """Queue the records, in order: from BATCH_FROM records on as whole record batches built here (one
        future per batch instead of one per record, the partitioner, murmur2 in pure Python, once per
        crisis). Returns, per record, the future of what carries it and, for a record in a batch built
        here, its partition and its place in that batch (crisis.bus.kafka._sent)."""
        producer = self._producer
        assert producer is not None
        await producer.partitions_for(self.topic)  # the topic's metadata, for the partitioner below
        if len(records) < BATCH_FROM:
            # A few records (an action, a transition): through the producer's own batches, which gather
            # the small writes of concurrent requests into one produce request within linger_ms. A batch
            # of our own waits for the partition's previous one to leave, which spaces small writes out
            # and leaves concurrent writers of one crisis more time to get in each other's way.
            return [
                (
                    await producer.send(
                        self.topic, r.value, key=r.key, headers=r.headers, partition=self._partition(r.key)
                    ),
                    -1,
                    None,
                )
                for r in records
            ]
        partitions: dict[bytes, int] = {}
        queued: list[Queued | None] = []
        # Per partition, the batch being filled and the records in it; sent when full, and at the end.
        filling: dict[int, tuple[Any, list[tuple[int, Any]]]] = {}

        async def flush(partition: int) -> None:
            builder, members = filling.pop(partition)
            future = await producer.send_batch(builder, self.topic, partition=partition)
            for index, appended in members:
                queued[index] = (future, partition, appended)

        for index, record in enumerate(records):
            partition = partitions.get(record.key)
            if partition is None:
                partition = partitions[record.key] = self._partition(record.key)
            queued.append(None)
            while True:
                if partition not in filling:
                    filling[partition] = (producer.create_batch(), [])
                builder, members = filling[partition]
                appended = builder.append(
                    key=record.key, value=record.value, timestamp=None, headers=record.headers
                )
                if appended is not None:
                    members.append((index, appended))
                    break
                if members:
                    await flush(partition)  # full: sent, and the record goes into a new batch
                    continue
                # Larger than a whole batch: sent on its own, by the producer, after what precedes it.
                filling.pop(partition)
                future = await producer.send(
                    self.topic, record.value, key=record.key, headers=record.headers, partition=partition
                )
                queued[index] = (future, partition, None)
                break
        for partition in list(filling):
            await flush(partition)
        return [item for item in queued if item is not None]

    def _partition(self, key: bytes) -> int:
        """The partition the producer picks for `key`: the exact code path send() takes for partition=None
        (aiokafka <0.15 is pinned), run by the caller once per crisis rather than per record."""
        assert self._producer is not None
        return int(self._producer._partition(self.topic, None, key, None, key, None))

    async def _make_durable(self, records: Sequence[RawRecord], metadata: Sequence[Sent]) -> None:
        """Append the acknowledged records at their offsets and fsync (in a thread: fsync blocks)."""
        assert self._journal is not None
        entries = [
            Entry(m.partition, m.offset, m.timestamp, r.key, r.value, tuple(r.headers))
            for r, m in zip(records, metadata, strict=True)
        ]
        await asyncio.to_thread(self._journal.append, entries)

    async def describe(self) -> Topology:
        async with self._consumer() as consumer:
            parts = await _partitions(consumer, self.topic)
            earliest = await consumer.beginning_offsets(parts)
            return Topology(
                cluster_id=self._cluster_id,
                topic=self.topic,
                partitions=len(parts),
                earliest={tp.partition: off for tp, off in earliest.items()},
                log_id=self._journal.log_id if self._journal is not None else self._cluster_id,
            )

    async def healthy(self) -> bool:
        if self._producer is None:
            return False
        try:
            async with asyncio.timeout(2):
                return bool(await self._producer.client.fetch_all_metadata())
        except (KafkaError, TimeoutError):
            return False

    @asynccontextmanager
    async def _consumer(self) -> AsyncIterator[AIOKafkaConsumer]:
        consumer = AIOKafkaConsumer(
            **self._common(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._s.kafka_fetch_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        try:
            yield consumer
        finally:
            await consumer.stop()

    @asynccontextmanager
    async def reader(self, start: Mapping[int, int] | None = None) -> AsyncIterator[KafkaReader]:
        async with self._consumer() as consumer:
            parts = await _partitions(consumer, self.topic)
            consumer.assign(parts)
            for tp in parts:
                if start and tp.partition in start:
                    consumer.seek(tp, start[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
            positions = {tp.partition: await consumer.position(tp) for tp in parts}
            yield KafkaReader(consumer, parts, positions, self._echo)


async def restore_journal(settings: Settings) -> int:
    """Replay the journal in `settings.kafka_journal_dir` into an empty topic at the same offsets.

    Returns the number of events restored. Raises JournalError when the broker does not place a record at
    its journaled offset (the topic was not empty, or has fewer partitions than the journal names).
    """
    assert settings.kafka_journal_dir is not None
    journal = Journal(settings.kafka_journal_dir).open()
    try:
        partitions = by_partition(journal)
    finally:
        journal.close()
    if not partitions:
        return 0
    bus = KafkaBus(settings)
    await bus.ensure_topic()
    options = connection_options(settings)
    options["request_timeout_ms"] = max(settings.kafka_request_timeout_ms, 30_000)
    producer = AIOKafkaProducer(
        **options,
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        linger_ms=5,
        max_batch_size=1024 * 1024,
    )
    await producer.start()
    restored = 0
    try:
        for partition, entries in partitions.items():
            futures = []
            expected = []
            for entry in with_fillers(entries):
                futures.append(
                    await producer.send(
                        settings.kafka_topic,
                        entry.value,
                        key=entry.key,
                        headers=list(entry.headers),
                        partition=partition,
                        timestamp_ms=entry.timestamp_ms,
                    )
                )
                expected.append(entry.offset)
            placed = await asyncio.gather(*futures)
            for meta, offset in zip(placed, expected, strict=True):
                if meta.offset != offset:
                    raise JournalError(
                        f"partition {partition}: a journaled record landed at offset {meta.offset}, not "
                        f"{offset}; the broker's topic was not empty"
                    )
            restored += len(entries)
    except KafkaError as exc:
        raise JournalError(f"the embedded broker refused the restore: {type(exc).__name__}: {exc}") from exc
    finally:
        await producer.stop()
    log.info("log_restored", events=restored, path=str(settings.kafka_journal_dir))
    return restored


async def refusal(settings: Settings, failure: BaseException) -> KafkaRefused:
    """Why the brokers could not be used, found by connecting to each bootstrap address in turn.

    aiokafka reports a bootstrap that failed for any reason as "Unable to bootstrap": one direct connection
    with the same TLS and SASL options raises the real cause (an untrusted certificate, refused credentials).
    """
    options = connection_options(settings)
    del options["bootstrap_servers"]
    for host, port, _ in collect_hosts(settings.kafka_bootstrap, randomize=False):
        conn = None
        try:
            async with asyncio.timeout(max(settings.kafka_request_timeout_ms / 1000, 1.0)):
                conn = await create_conn(host, port, **options)
                # A broker that wants authentication the client did not offer refuses the first request.
                await conn.send(MetadataRequest([]))
        except Exception as exc:  # any failure here is the one to report
            return KafkaRefused(describe_failure(settings, host, port, exc))
        finally:
            if conn is not None:
                conn.close()
    return KafkaRefused(f"Kafka at {settings.kafka_bootstrap} could not be used: {failure!r}")


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic)
    if not parts:
        raise PublishError(f"topic {topic} does not exist")
    return [TopicPartition(topic, p) for p in sorted(parts)]


class Echo:
    """Events this process wrote, so its own reader need not decode them again.

    A writer that waits for its own reader to fold its events (the ledger) would otherwise pay the
    decoding of every record it has just encoded, the largest single cost of a batch. A record is only
    taken from here when its bytes are exactly those this process sent: a record written by anyone else
    under the same event id is decoded as usual, so every reader still folds what is in the log.
    """

    LIMIT = 200_000  # records written but never read back (a reader elsewhere, a failed send) age out

    def __init__(self) -> None:
        self._sent: dict[str, tuple[RawRecord, Envelope]] = {}

    def remember(self, envelopes: Sequence[Envelope], records: Sequence[RawRecord]) -> None:
        sent = self._sent
        sent.update((env.id, (record, env)) for env, record in zip(envelopes, records, strict=True))
        for _ in range(len(sent) - self.LIMIT):
            del sent[next(iter(sent))]

    def recall(self, value: bytes, headers: list[tuple[str, bytes]]) -> Envelope | None:
        if not self._sent:
            return None
        # This codec writes `ce_id` second: looked for elsewhere only in records written otherwise.
        if len(headers) > 1 and headers[1][0] == "ce_id":
            event_id: bytes | None = headers[1][1]
        else:
            event_id = next((v for k, v in headers if k == "ce_id"), None)
        sent = self._sent.get(event_id.decode()) if event_id is not None else None
        if sent is None or sent[0].value != value or sent[0].headers != headers:
            return None
        del self._sent[sent[1].id]
        return sent[1]


class KafkaReader:
    def __init__(
        self, consumer: AIOKafkaConsumer, parts: list[TopicPartition], start: dict[int, int], echo: Echo
    ) -> None:
        self._consumer = consumer
        self._parts = parts
        self._next = start
        self._echo = echo

    def caught_up(self) -> bool:
        """Compares with the fetch high-watermark: ListOffsets is not reliable on every broker."""
        for tp in self._parts:
            high = self._consumer.highwater(tp)
            if high is None or self._next[tp.partition] < high:
                return False
        return True

    def behind(self) -> int:
        highs = ((self._consumer.highwater(tp), self._next[tp.partition]) for tp in self._parts)
        return sum(high - at for high, at in highs if high is not None and high > at)

    def ends(self) -> dict[int, int]:
        """The fetch high-watermark per partition (ListOffsets is not reliable on every broker)."""
        out = {}
        for tp in self._parts:
            high = self._consumer.highwater(tp)
            out[tp.partition] = max(high if high is not None else 0, self._next[tp.partition])
        return out

    async def next_batch(self, timeout: float, limit: int | None = None) -> list[Delivered]:
        records = await self._consumer.getmany(
            *self._parts, timeout_ms=int(timeout * 1000), max_records=limit
        )
        batch: list[Delivered] = []
        for tp, items in records.items():
            for r in items:
                self._next[tp.partition] = r.offset + 1
                # aiokafka gives the headers as a list of its own (copied only when it is not one).
                value, headers = r.value or b"", r.headers if type(r.headers) is list else list(r.headers)
                if not value and headers and headers[0][0] == FILLER_HEADER:
                    continue  # keeps a restored log's offsets; never an event
                try:
                    env = self._echo.recall(value, headers) or decode(value, headers)
                except Exception as exc:
                    log.warning(
                        "record_skipped", partition=tp.partition, offset=r.offset, error=str(exc)[:200]
                    )
                    continue
                batch.append(Delivered(env, tp.partition, r.offset))
        return batch


def log_outcome(response: Any, topic: str, **created: Any) -> None:
    """Log a CreateTopics answer: created, kept (it existed), or left to the deployment."""
    for _, code, *_ in getattr(response, "topic_errors", ()):
        error = for_code(code)
        if code == 0:
            log.info("topic_created", topic=topic, **created)
        elif error in (TopicAuthorizationFailedError, ClusterAuthorizationFailedError):
            # Least privilege: the deployment creates the topic (deploy/topics.sh, a KafkaTopic) and this
            # principal may not; reading the topic then says whether it exists.
            log.info("topic_not_created", topic=topic, reason="this principal may not create topics")
        elif error is not TopicAlreadyExistsError:
            log.warning("topic_not_created", topic=topic, reason=error.__name__)


@dataclass(frozen=True, slots=True)
class Sent:
    """Where an acknowledged record sits."""

    partition: int
    offset: int
    timestamp: int


# A record queued: the future of what carries it, then, for a record in a batch built here, the batch's
# partition and what appending it returned (its place in the batch); -1 and None for a record sent alone.
Queued = tuple["asyncio.Future[Any]", int, Any]


def _sent(answer: Any, partition: int, appended: Any) -> Sent:
    """Where an acknowledged record sits. One appended to a batch sits at the batch's base offset plus its
    place in it, with the broker's timestamp when the topic keeps log-append time (-1 otherwise: the time
    the record was made with)."""
    if appended is None:
        return Sent(answer.partition, answer.offset, answer.timestamp)
    timestamp = answer.timestamp if answer.timestamp not in (None, -1) else appended.timestamp
    return Sent(partition, answer.offset + appended.offset, timestamp)
