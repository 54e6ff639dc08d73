"""The data keys on Kafka: a compacted topic `<topic>.keys`, one record per key, a tombstone to destroy it.

Every process reads the whole topic at start and again whenever an event names a key it does not hold.
A tombstone removes the key from every reader at once; from the topic's own segments it goes when the
log cleaner compacts them, which these settings keep short: a segment rolls after SEGMENT_MS, any dirty
ratio is cleaned, and the tombstone itself goes DELETE_RETENTION_MS later. The broker's
`log.cleaner.backoff.ms` (15 s by default) adds to that bound; a replica on a stopped broker keeps its copy
until it rejoins and compacts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Collection
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaError,
)

from crisis.bus.base import PublishError
from crisis.bus.kafka import log_outcome
from crisis.bus.kafka_security import connection_options
from crisis.config import Settings
from crisis.crypto.keyring import Covers, MemoryKeyring
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

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._s = settings
        self.topic = keys_topic(settings)
        self._tp = TopicPartition(self.topic, 0)
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reading = asyncio.Lock()
        self._tail: asyncio.Task[None] | None = None

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
        await self._consumer.seek_to_beginning(self._tp)
        await self.refresh()
        self._tail = asyncio.create_task(self._follow(), name="keys-tail")
        return self

    async def _follow(self) -> None:
        """Read new keys as they come: a key is written before the first event under it, so another
        process's events usually find their key here already, without a round trip of their own."""
        assert self._consumer is not None
        while True:
            try:
                async with self._reading:
                    records = await self._consumer.getmany(self._tp, timeout_ms=self._s.kafka_fetch_wait_ms)
                    self._apply(records.get(self._tp, []))
                await asyncio.sleep(0)  # a waiting refresh() gets the lock between fetches
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                log.warning("keys_tail_failed", error=str(exc))
                await asyncio.sleep(1)

    def _apply(self, records: list[Any]) -> None:
        for record in records:
            kid = (record.key or b"").decode()
            if record.value:
                self.keys[kid] = base64.b64decode(record.value)
            else:
                self.keys.pop(kid, None)

    async def __aexit__(self, *exc: object) -> None:
        if self._tail is not None:
            self._tail.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tail
        # Stopped even when the broker is gone: what is left to send or fetch is not needed any more.
        for client in (self._producer, self._consumer):
            if client is not None:
                await _stop(client)

    async def _ensure_topic(self) -> None:
        admin = AIOKafkaAdminClient(**self._common())
        await admin.start()
        try:
            topic = NewTopic(self.topic, 1, self._s.kafka_replication, topic_configs=dict(TOPIC_CONFIG))
            response = await admin.create_topics([topic])
        finally:
            await admin.close()
        log_outcome(response, self.topic, config=TOPIC_CONFIG)

    async def refresh(self) -> None:
        """Read the topic up to its current end: keys made and destroyed by every process."""
        assert self._consumer is not None
        async with self._reading:
            end = (await self._consumer.end_offsets([self._tp]))[self._tp]
            while await self._consumer.position(self._tp) < end:
                records = await self._consumer.getmany(self._tp, timeout_ms=500)
                self._apply(records.get(self._tp, []))

    async def _send(self, items: dict[str, bytes | None]) -> None:
        """Write keys (None: a tombstone), acknowledged by every in-sync replica, or raise PublishError."""
        assert self._producer is not None
        try:
            async with asyncio.timeout(self._s.publish_timeout_s):
                futures = []
                for kid, key in items.items():
                    value = base64.b64encode(key) if key is not None else None
                    futures.append(
                        await self._producer.send(self.topic, value, key=kid.encode(), partition=0)
                    )
                await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as exc:
            # Before the events that need them are published: those are not written either.
            raise PublishError(f"the data keys could not be written: {type(exc).__name__}") from exc

    async def create(self, kids: Collection[str]) -> None:
        made = {kid: new_key() for kid in kids if kid not in self.keys}
        if made:
            await self._send(dict(made))
            self.keys.update(made)

    async def destroy(self, covers: Covers, known: Collection[str] = ()) -> None:
        kids = {*known, *self.forget(covers)}
        if kids:
            await self._send(dict.fromkeys(kids))


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
