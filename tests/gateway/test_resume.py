"""Exact resume on real sockets: cuts, a second gateway, gaps; 0 lost, 0 duplicated, in order."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from crisis.broker import free_port
from crisis.bus.kafka import KafkaBus
from crisis.bus.memory import MemoryBus
from crisis.client import Message, Stream
from crisis.config import Settings
from crisis.crypto.adapters import open_keyring
from crisis.crypto.sealed import SealedBus
from crisis.domain.envelope import Envelope
from crisis.gateway import cursor as cursors
from crisis.gateway.server import Gateway
from crisis.keys import KeyStore
from crisis.ledger import Ledger
from crisis.runtime import ledger_running
from tests.conftest import Stack
from tests.gateway.conftest import (
    OpenStack,
    client,
    events,
    gateway_port,
    indicators,
    open_crisis,
    publish,
    recv,
    seq,
)
from tests.gateway.events import crisis_opened
from tests.gateway.proxy import CuttableProxy


def check_exact(got: Sequence[Message], sent: Sequence[Envelope]) -> None:
    """Every event once, and each crisis's events in the order they were published."""
    ids = [m.id for m in got]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicated"
    assert set(ids) == {e.id for e in sent}, f"{len({e.id for e in sent} - set(ids))} lost"
    per_crisis: dict[str, list[int]] = defaultdict(list)
    for m in got:
        per_crisis[m.subject or ""].append(seq(m.body))
    for numbers in per_crisis.values():
        assert numbers == sorted(numbers)


async def consume(
    stream: Stream, count: int, *, cut: CuttableProxy | None = None, at: Sequence[int] = ()
) -> list[Message]:
    got: list[Message] = []
    pending = sorted(at)
    async with asyncio.timeout(60):
        async for message in stream:
            got.append(message)
            if pending and len(got) >= pending[0] and cut is not None and cut.cut():
                pending.pop(0)
            if len(got) == count:
                break
    return got


@pytest.mark.kafka
async def test_twenty_random_cuts_while_ten_thousand_events_stream(full_stack: Stack) -> None:
    s = full_stack
    crises = [await open_crisis(s) for _ in range(4)]
    sent = indicators(crises, 10_000)
    key = s.add_key("vidshare", "provider")
    # The last cut leaves 3,000 events to go, so the client is still reading over a live connection when
    # each cut comes due (a cut only counts when it drops one).
    cuts = random.Random(20).sample(range(100, 7_000), 20)
    # dedupe=0: the client forgets ids at once, so a duplicate from the gateway would show here.
    async with (
        CuttableProxy(gateway_port(s)) as proxy,
        Stream(proxy.url(), key, types=["indicator.shared"], dedupe=0, backoff=0.02) as stream,
    ):
        await stream.connect()
        publisher = asyncio.create_task(publish(s.bus, sent, batch=100, pause=0.005))
        got = await consume(stream, len(sent), cut=proxy, at=cuts)
        await publisher
        # A cut counts only when it drops a live connection. On a loaded machine the client can fall far
        # enough behind that, near the end, it holds every remaining event while a cut is due and no
        # connection is left to drop; most cuts still land mid-stream, each a reconnect and an exact resume.
        assert proxy.cuts >= 15
        assert stream.connects >= proxy.cuts
    check_exact(got, sent)
    assert not stream.gaps


@pytest.mark.kafka
async def test_two_gateways_on_their_own_ledgers_both_deliver_everything_and_share_cursors(
    full_stack: Stack, settings: Settings
) -> None:
    s = full_stack
    crises = [await open_crisis(s) for _ in range(3)]
    sent = indicators(crises, 2_000)
    key = s.add_key("vidshare", "provider")
    async with (
        second_gateway(settings, s.keys) as other_url,
        Stream(s.ws_url, key, types=["indicator.shared"], dedupe=0) as on_a,
        Stream(other_url, key, types=["indicator.shared"], dedupe=0) as on_b,
    ):
        await on_a.connect()
        await on_b.connect()
        await publish(s.bus, sent)
        got_a, got_b = await asyncio.gather(consume(on_a, len(sent)), consume(on_b, len(sent)))
        check_exact(got_a, sent)
        check_exact(got_b, sent)
        # A cursor from gateway A resumes exactly on gateway B (another ledger, another read order).
        half = got_a[len(sent) // 2]
        assert half.cursor is not None
        async with Stream(other_url, key, types=["indicator.shared"], cursor=half.cursor, dedupe=0) as moved:
            rest = await consume(moved, len(sent) - len(sent) // 2 - 1)
        check_exact([*got_a[: len(sent) // 2 + 1], *rest], sent)


@asynccontextmanager
async def second_gateway(settings: Settings, keys: KeyStore, port: int = 0) -> AsyncIterator[str]:
    """Another gateway process in all but name: its own Kafka clients, its own ledger, its own key reader."""
    mine = settings.model_copy(update={"gateway_port": port})
    async with (
        KafkaBus(mine) as raw,
        open_keyring(mine) as keyring,
        ledger_running(bus := SealedBus(raw, keyring), mine) as ledger,
        Gateway(mine, ledger, keys, bus) as gw,
    ):
        yield f"ws://127.0.0.1:{gw.port}/v1/stream"


# ------------------------------------------------------------------ gaps (the memory bus can forget)


@asynccontextmanager
async def memory_gateway(
    settings: Settings, bus: MemoryBus
) -> AsyncIterator[tuple[Gateway, Ledger, KeyStore]]:
    keys = KeyStore(settings.keys_file)
    ledger = Ledger(bus, poll=0.01)
    task = asyncio.create_task(ledger.run())
    try:
        await asyncio.wait_for(ledger.caught_up.wait(), 5)
        async with Gateway(settings, ledger, keys, bus) as gw:
            yield gw, ledger, keys
    finally:
        task.cancel()


async def test_a_cursor_older_than_retention_gets_a_gap_then_the_earliest_kept(tmp_path: Any) -> None:
    settings = Settings(keys_file=tmp_path / "keys.json", gateway_port=0)
    bus = MemoryBus(partitions=1)
    async with memory_gateway(settings, bus) as (gw, ledger, keys):
        _, key = keys.add("hub", "coordinator")  # type: ignore[arg-type]
        crisis = crisis_opened()
        await ledger.write([crisis])
        sent = indicators([crisis], 10)
        await ledger.write(sent)
        base = f"ws://127.0.0.1:{gw.port}/v1/stream"
        async with client(base, key) as ws:
            early = (await recv(ws))["cursor"]
        old = cursors.decode(early)
        await ledger.write(more := indicators([crisis], 3))
        bus.forget_before({0: 6})  # offsets 0..5 fall out of retention
        async with client(base, key, cursor=cursors.encode(old.origin, [3])) as ws:
            hello, gap = await recv(ws), await recv(ws)
            assert hello["type"] == "subscribed"
            assert gap["type"] == "gap" and gap["reason"] == "retention"
            assert gap["missing"] == [{"partition": 0, "from": 3, "to": 6}]
            got = await events(ws, 8)
        # Offsets 6..10 were sent[5:], then the three written after.
        assert [e["id"] for e in got] == [e.id for e in [*sent[5:], *more]]


async def test_a_cursor_from_another_cluster_gets_a_gap_then_everything_kept(tmp_path: Any) -> None:
    settings = Settings(keys_file=tmp_path / "keys.json", gateway_port=0)
    bus = MemoryBus(partitions=2)
    async with memory_gateway(settings, bus) as (gw, ledger, keys):
        _, key = keys.add("hub", "coordinator")  # type: ignore[arg-type]
        crisis = crisis_opened()
        await ledger.write([crisis, *indicators([crisis], 4)])
        foreign = cursors.encode(cursors.origin("another-cluster", "crisis.events"), [9, 9])
        async with client(f"ws://127.0.0.1:{gw.port}/v1/stream", key, cursor=foreign) as ws:
            await recv(ws)
            gap = await recv(ws)
            assert gap["type"] == "gap" and gap["reason"] == "foreign_cursor" and gap["missing"] is None
            got = await events(ws, 5)
        assert got[0]["id"] == crisis.id


# ------------------------------------------------------------------ a gateway process killed mid-stream


@asynccontextmanager
async def gateway_process(settings: Settings, port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {
        **os.environ,
        "CRISIS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CRISIS_KAFKA_TOPIC": settings.kafka_topic,
        "CRISIS_KAFKA_PARTITIONS": str(settings.kafka_partitions),
        "CRISIS_KAFKA_IDEMPOTENCE": str(settings.kafka_idempotence).lower(),
        "CRISIS_KAFKA_FETCH_WAIT_MS": str(settings.kafka_fetch_wait_ms),
        "CRISIS_KEYS_FILE": str(settings.keys_file),
        "CRISIS_GATEWAY_PORT": str(port),
        "CRISIS_LOG_LEVEL": "warning",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.gateway.gateway_process", env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = await proc.stdout.readline()
        assert line.split() == [b"ready", str(port).encode()], line
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.kafka
async def test_a_gateway_process_killed_and_restarted_loses_nothing(
    api_stack: Stack, settings: Settings
) -> None:
    s = api_stack
    crises = [await open_crisis(s) for _ in range(3)]
    sent = indicators(crises, 5_000)
    key = s.add_key("vidshare", "provider")
    port = free_port()
    url = f"ws://127.0.0.1:{port}/v1/stream"
    got: list[Message] = []
    async with Stream(
        url, key, types=["indicator.shared"], dedupe=0, backoff=0.05, backoff_max=0.5
    ) as stream:
        async with gateway_process(settings, port) as first:
            await stream.connect()
            publisher = asyncio.create_task(publish(s.bus, sent, batch=100, pause=0.01))
            got += await consume(stream, 1_500)
            first.send_signal(signal.SIGKILL)  # no close frame, no goodbye
            await first.wait()
        async with gateway_process(settings, port):
            got += await consume(stream, len(sent) - len(got))
            await publisher
        assert stream.connects == 2
    check_exact(got, sent)


# ------------------------------------------------------------------ cursors beyond the end of the log


@pytest.mark.kafka
@pytest.mark.parametrize("beyond", [[2**63, 2**63, 2**63], [0, 10_000, 0]], ids=["all", "one-partition"])
async def test_a_cursor_beyond_the_end_of_the_log_gets_a_gap_then_everything(
    full_stack: Stack, beyond: list[int]
) -> None:
    s = full_stack
    crisis = await open_crisis(s)
    sent = indicators([crisis], 5)
    await publish(s.bus, sent)
    key = s.add_key("vidshare", "provider")
    async with client(s.ws_url, key) as ws:
        origin = cursors.decode((await recv(ws))["cursor"]).origin
    # The same cluster and topic, positions no event of this log ever had (a log reset under its clients).
    cursor = cursors.encode(origin, beyond)
    async with client(s.ws_url, key, cursor=cursor) as ws:
        assert (await recv(ws))["type"] == "subscribed"
        gap = await recv(ws)
        assert gap["type"] == "gap", gap
        assert gap["reason"] == "beyond_end"
        assert gap["missing"] is None
        got = await events(ws, 6)
        assert [e["id"] for e in got] == [e.id for e in [crisis, *sent]]
        # The gap's cursor is where the stream restarted: the start of this log.
        assert cursors.decode(gap["cursor"]).offsets == (0, 0, 0)


@pytest.mark.kafka
async def test_a_cursor_at_the_end_of_the_log_is_no_gap(full_stack: Stack) -> None:
    s = full_stack
    crisis = await open_crisis(s)
    await s.ledger.write(indicators([crisis], 5))  # folded: the next subscription starts after them
    key = s.add_key("vidshare", "provider")
    async with client(s.ws_url, key) as ws:
        end = (await recv(ws))["cursor"]
    async with client(s.ws_url, key, cursor=end) as ws:
        assert (await recv(ws))["type"] == "subscribed"
        await publish(s.bus, later := indicators([crisis], 2))
        got = await events(ws, 2)
    assert [e["id"] for e in got] == [e.id for e in later]


# ------------------------------------------------------------------ catch-up beyond the recent window


@pytest.mark.kafka
@pytest.mark.parametrize("budget", [70_000, 0], ids=["small-window", "no-window"])
async def test_a_resume_older_than_the_recent_window_reads_kafka_then_the_window(
    open_stack: OpenStack, budget: int
) -> None:
    # ~60 events of recent frames: a resume from the start reads most of the log from Kafka, then hands
    # over to the window, while live events keep arriving. Two clients at once, to share the frames.
    async with open_stack(gateway_recent_bytes=budget) as s:
        crises = [await open_crisis(s) for _ in range(3)]
        key = s.add_key("vidshare", "provider")
        async with client(s.ws_url, key) as ws:
            start = (await recv(ws))["cursor"]
        first = indicators(crises, 1_500)
        await publish(s.bus, first)
        later = indicators(crises, 1_500, start=1_500)
        publisher = asyncio.create_task(publish(s.bus, later, batch=50, pause=0.01))
        async with (
            Stream(s.ws_url, key, types=["indicator.shared"], cursor=start, dedupe=0) as one,
            Stream(s.ws_url, key, types=["indicator.shared"], cursor=start, dedupe=0) as two,
        ):
            got_one, got_two = await asyncio.gather(consume(one, 3_000), consume(two, 3_000))
        await publisher
    check_exact(got_one, [*first, *later])
    check_exact(got_two, [*first, *later])
    assert not one.gaps
    assert not two.gaps
