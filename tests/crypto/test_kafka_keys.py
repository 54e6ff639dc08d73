"""Data keys on Kafka: one record per batch of keys, rewritten without a destroyed key, never resurrected,
not even by a process restarted after every process that knew of the destruction has stopped.

Each test reads the keys topic as Kafka holds it, with a plain consumer, to check the record bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaTimeoutError

from crisis.broker import EmbeddedBroker
from crisis.bus.base import PublishError
from crisis.bus.kafka_keys import TOPIC_CONFIG, KafkaKeyring, keys_topic
from crisis.bus.key_records import MARKER
from crisis.config import Settings

pytestmark = pytest.mark.kafka

Records = list[tuple[str, bytes | None]]
Ring = Callable[..., KafkaKeyring]


@pytest.fixture(params=["memory", "key file"])
def ring(request: pytest.FixtureRequest, tmp_path: Path) -> Ring:
    """A process's keyring: its keys in memory, or in a key file of its own (each process its own state
    directory, new: it reads the topic from the start)."""
    made = iter(range(1_000))

    def make(settings: Settings, *, destroys: bool = False) -> KafkaKeyring:
        if request.param == "memory":
            return KafkaKeyring(settings, destroys=destroys)
        return KafkaKeyring(settings, destroys=destroys, state_dir=tmp_path / f"state-{next(made)}")

    return make


async def topic_records(settings: Settings) -> Records:
    """Every record of the keys topic in log order: (record key, value)."""
    tp = TopicPartition(keys_topic(settings), 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    out: Records = []
    try:
        while batch := await consumer.getmany(tp, timeout_ms=1000):
            out += [((r.key or b"").decode(), r.value) for r in batch[tp]]
        return out
    finally:
        await consumer.stop()


async def write_raw(settings: Settings, records: Records) -> None:
    """Records written as an older version or a process behind would write them."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for name, value in records:
            await producer.send_and_wait(keys_topic(settings), value, key=name.encode(), partition=0)
    finally:
        await producer.stop()


async def compacted(settings: Settings) -> Settings:
    """The keys topic as the log cleaner leaves it, copied to a topic of its own (the embedded broker does
    not compact): the latest record of each record key, in log order."""
    records = await topic_records(settings)
    latest = {name: at for at, (name, _) in enumerate(records)}
    copy = settings.model_copy(update={"kafka_topic": f"{settings.kafka_topic}-compacted"})
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(keys_topic(copy), 1, 1, topic_configs=dict(TOPIC_CONFIG))])
    finally:
        await admin.close()
    await write_raw(copy, [record for at, record in enumerate(records) if latest[record[0]] == at])
    return copy


def held(value: bytes | None) -> dict[str, bytes]:
    """The keys a batch record's bytes hold."""
    return {kid: base64.b64decode(key) for kid, key in json.loads(value).items()} if value else {}


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.2)


def only(kid: str) -> Callable[[str], bool]:
    return lambda other: other == kid


async def test_a_share_of_many_keys_is_one_record_that_another_process_finds_on_refresh(
    settings: Settings,
    ring: Ring,
) -> None:
    kids = [f"c1/i{n}" for n in range(1000)]
    async with ring(settings) as one, ring(settings) as two:
        await one.create(["c1"])
        await one.create(kids)
        await one.create(kids[:10])  # all kept: nothing written
        await two.refresh()
        made = {kid: one.get(kid) for kid in ["c1", *kids]}
        assert all(two.get(kid) == key and key is not None for kid, key in made.items())
        # Shares made at once go out in one record batch of several records, after which some brokers'
        # ListOffsets answers short of the end: refresh() still reads them all.
        await asyncio.gather(*(one.create([f"c2/i{n}"]) for n in range(20)))
        await two.refresh()
        assert all(two.get(f"c2/i{n}") == one.get(f"c2/i{n}") is not None for n in range(20))
    records = await topic_records(settings)
    assert [len(held(value)) for _, value in records] == [1, 1000, *[1] * 20]
    assert all(name.startswith("batch/") and len(name) == 38 for name, _ in records)
    assert held(records[1][1]) == {kid: made[kid] for kid in kids}


async def test_destroying_a_key_writes_its_batch_again_with_the_rest_then_a_tombstone(
    settings: Settings,
    ring: Ring,
) -> None:
    async with ring(settings) as one, ring(settings) as two:
        await one.create(["c1/x", "c1/y", "c1/z"])
        keys = {kid: one.get(kid) for kid in ("c1/x", "c1/y", "c1/z")}
        [(batch, _)] = await topic_records(settings)
        await one.destroy(only("c1/x"))
        latest = dict(await topic_records(settings))
        # The marker, acknowledged with the batch: a key id, never a key.
        assert latest.keys() == {batch, "gone/c1/x"}
        assert json.loads(latest["gone/c1/x"] or b"") == {"gone": True}
        assert held(latest[batch]) == {"c1/y": keys["c1/y"], "c1/z": keys["c1/z"]}
        await two.refresh()
        assert two.get("c1/x") is None and two.get("c1/y") == keys["c1/y"]

        await two.destroy(lambda kid: kid.startswith("c1/"), ["c1/y", "c1/z"])
        records = await topic_records(settings)
        assert records[-3:] == [("gone/c1/y", MARKER), ("gone/c1/z", MARKER), (batch, None)]
        await one.refresh()
        assert one.keys == {}
    async with ring(settings) as three:
        assert three.keys == {}


async def test_a_stale_rewrite_after_a_destroy_is_never_taken_back_and_is_written_again_without_it(
    settings: Settings,
    ring: Ring,
) -> None:
    async with ring(settings) as one, ring(settings) as reader:
        await one.create(["c1/x", "c1/y"])
        [(batch, original)] = await topic_records(settings)
        await reader.refresh()
        assert reader.get("c1/x") is not None
        reader.forget(only("c1/x"))  # a gateway folding the erasure: forgets, never writes
        await one.destroy(only("c1/x"))
        # A process behind in the fold writes the batch back as it last read it, x included.
        await write_raw(settings, [(batch, original)])

        async def repaired() -> bool:
            return "c1/x" not in held(dict(await topic_records(settings))[batch])

        await wait_for(repaired)
        await reader.refresh()
        assert one.get("c1/x") is None and reader.get("c1/x") is None
        assert reader.get("c1/y") == one.get("c1/y") is not None
        records = [value for name, value in await topic_records(settings) if name == batch]
        assert [sorted(held(value)) for value in records[-3:]] == [["c1/y"], ["c1/x", "c1/y"], ["c1/y"]]


async def test_a_process_restarted_after_the_destroyer_stopped_never_takes_a_key_back_from_a_stale_rewrite(
    settings: Settings,
    ring: Ring,
) -> None:
    async with ring(settings) as one:
        await one.create(["c1/x", "c1/y"])
        [(batch, original)] = await topic_records(settings)
        y = one.get("c1/y")
        await one.destroy(only("c1/x"))
    # A process behind writes the batch back, x included, once the only process that knew has stopped:
    # nobody running repairs it.
    await write_raw(settings, [(batch, original)])
    # Once compacted, no record of the batch without x is left before the stale one: only the marker says.
    cleaned = await compacted(settings)
    assert await topic_records(cleaned) == [("gone/c1/x", MARKER), (batch, original)]

    for topic in (settings, cleaned):
        # Restarts from a state store past the erasure: neither folds it again, both read from the start.
        async with ring(topic) as gateway, ring(topic, destroys=True) as api:
            for process in (gateway, api):
                assert process.get("c1/x") is None and process.get("c1/y") == y is not None

            async def repaired(topic: Settings = topic) -> bool:
                return held(dict(await topic_records(topic))[batch]) == {"c1/y": y}

            await wait_for(repaired)
            await gateway.refresh()
            assert gateway.get("c1/x") is None and gateway.get("c1/y") == y


async def test_two_processes_destroying_from_stale_views_converge_without_either_key(
    settings: Settings,
    ring: Ring,
) -> None:
    async with ring(settings) as one, ring(settings) as two:
        await one.create(["c1/x", "c1/y", "c1/z"])
        [(batch, _)] = await topic_records(settings)
        await two.refresh()
        z = one.get("c1/z")
        # Each writes the batch from the view it had, before reading the other's record: whichever lands
        # last holds a key the other destroyed.
        await asyncio.gather(one.destroy(only("c1/x")), two.destroy(only("c1/y")))

        async def converged() -> bool:
            return held(dict(await topic_records(settings))[batch]) == {"c1/z": z}

        await wait_for(converged)
        records = [sorted(held(value)) for name, value in await topic_records(settings) if name == batch]
        assert records[1:3] in ([["c1/y", "c1/z"], ["c1/x", "c1/z"]], [["c1/x", "c1/z"], ["c1/y", "c1/z"]])
        for process in (one, two):
            await process.refresh()
            assert process.get("c1/x") is None and process.get("c1/y") is None and process.get("c1/z") == z


async def test_keys_written_one_per_record_by_an_older_version_are_read_and_tombstoned(
    settings: Settings,
    ring: Ring,
) -> None:
    a, b, c = b"a" * 32, b"b" * 32, b"c" * 32
    await write_raw(
        settings,
        [
            ("c1", base64.b64encode(a)),
            ("c1/i1", base64.b64encode(b)),
            ("c1/i2", base64.b64encode(c)),
            ("c1/i2", None),  # destroyed the old way
        ],
    )
    async with ring(settings) as one, ring(settings) as two:
        assert (one.get("c1"), one.get("c1/i1"), one.get("c1/i2")) == (a, b, None)
        await one.create(["c1/i1", "c1/i3"])  # c1/i1 kept as it was; c1/i3 in a batch record
        assert one.get("c1/i1") == b
        await one.destroy(only("c1/i1"))
        assert (await topic_records(settings))[-1] == ("c1/i1", None)
        await two.refresh()
        assert (two.get("c1"), two.get("c1/i1"), two.get("c1/i3")) == (a, None, one.get("c1/i3"))


async def test_keys_that_cannot_be_written_are_refused_and_not_held_and_the_end_is_not_guessed(
    tmp_path: Path,
    ring: Ring,
) -> None:
    async with EmbeddedBroker() as broker:
        settings = Settings(
            kafka_bootstrap=broker.bootstrap,
            kafka_idempotence=False,
            kafka_topic="t",
            keys_file=tmp_path / "keys.json",
            publish_timeout_s=3,
            kafka_request_timeout_ms=1000,
        )
        async with ring(settings) as process:
            await process.create(["c1"])
            broker.kill()
            with pytest.raises(PublishError, match="the data keys could not be written"):
                await process.create(["c1/i1"])
            assert process.get("c1/i1") is None and process.get("c1") is not None
            # Nor is a key missing now taken for gone: reading to the end fails instead of ending early.
            with pytest.raises(KafkaTimeoutError):
                await process.refresh()
