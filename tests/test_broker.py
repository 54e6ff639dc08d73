"""The embedded broker (Tansu) and the librdkafka mock cluster, as real processes.

Nothing here skips: if Tansu cannot start, these tests fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

import crisis.broker
from crisis.broker import BrokerError, EmbeddedBroker, free_port, wait_for_kafka
from tests.support.mock_cluster import MockCluster, MockClusterError

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ helpers


def _state(pid: int) -> str | None:
    """The kernel's process state letter (R, S, T, Z...), or None once the process is reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()[0]


def _alive(pid: int) -> bool:
    """Some thread of the process still runs. A zombie (waiting for a possibly non-reaping new parent) does
    not; its leader turns Z before the other threads are gone, so every thread is checked."""
    try:
        tasks = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return any(_state(pid) not in (None, "Z", "X") for pid in [pid, *tasks])


def _wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _listening(pid: int) -> set[tuple[str, int]]:
    """TCP addresses the process listens on, from /proc (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            addr_hex, port_hex = local.split(":")
            raw = bytes.fromhex(addr_hex)
            if len(raw) == 4:
                host = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                host = socket.inet_ntop(socket.AF_INET6, words)
            found.add((host, int(port_hex, 16)))
    return found


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def _is_tansu(pid: int) -> bool:
    try:
        return "tansu" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


class _Child:
    """A Python child process in its own process group, with its output in a file (never a full pipe)."""

    def __init__(self, code: str, log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            process_group=0,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_line(self, prefix: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.output()
            # Whole lines only: the child may be writing the line being read.
            for line in text[: text.rfind("\n") + 1].splitlines():
                if line.startswith(prefix):
                    return line
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no line starting {prefix!r} (rc={self.proc.poll()}):\n{self.output()}")
            time.sleep(0.02)

    def signal_group(self, sig: signal.Signals) -> None:
        os.killpg(self.proc.pid, sig)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._out.close()


class _Spawner:
    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self.children: list[_Child] = []
        self.brokers: list[int] = []

    def child(self, code: str) -> _Child:
        child = _Child(code, self._tmp_path / f"child-{len(self.children)}.log")
        self.children.append(child)
        return child

    def close(self) -> None:
        for child in self.children:
            if child.proc.poll() is None:
                self.brokers += [p for p in _children(child.proc.pid) if _is_tansu(p)]
            child.close()
        for pid in self.brokers:
            if _alive(pid) and _is_tansu(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[_Spawner]:
    """Children a test starts, and any Tansu they leave behind, are killed even when the test fails."""
    spawner = _Spawner(tmp_path)
    try:
        yield spawner
    finally:
        spawner.close()


# ------------------------------------------------------------------------------------------------ Tansu


async def test_embedded_broker_round_trip_and_clean_exit() -> None:
    async with EmbeddedBroker() as broker:
        pid, port = broker.pid, broker.port
        assert broker.bootstrap == f"127.0.0.1:{port}"
        assert broker.cluster_id == "tansu_cluster"
        assert await wait_for_kafka(broker.bootstrap, timeout=5) == "tansu_cluster"
        assert _listening(pid) == {("127.0.0.1", port)}, "Tansu must listen on loopback only"

        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=False)
        await producer.start()
        try:
            sent = await asyncio.wait_for(
                producer.send_and_wait("broker-smoke", b"hello", key=b"k", headers=[("h", b"v")]), 10
            )
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            "broker-smoke",
            bootstrap_servers=broker.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 10)
        finally:
            await consumer.stop()
        assert (record.key, record.value, record.offset) == (b"k", b"hello", sent.offset)
        assert list(record.headers) == [("h", b"v")]

    assert not broker.running
    assert not _alive(pid)
    assert not _port_open(port)


async def test_pause_resume_kill_and_restart_on_the_same_port() -> None:
    async with EmbeddedBroker() as broker:
        first_pid, port = broker.pid, broker.port
        broker.pause()
        assert _state(first_pid) == "T"
        with pytest.raises(BrokerError, match=broker.bootstrap):
            await wait_for_kafka(broker.bootstrap, timeout=0.3)
        broker.resume()
        assert await wait_for_kafka(broker.bootstrap, timeout=5) == "tansu_cluster"

        broker.kill()
        assert not broker.running
        assert not _alive(first_pid)
        assert not _port_open(port)

        await broker.start()
        assert broker.port == port and broker.pid != first_pid
        assert await wait_for_kafka(broker.bootstrap, timeout=5) == "tansu_cluster"

        broker.pause()  # stop() must still end a paused broker promptly
    assert not _alive(broker.pid)


async def test_wait_for_kafka_times_out_with_bootstrap_and_last_error() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(BrokerError) as info:
        await wait_for_kafka(bootstrap, timeout=0.3)
    assert time.monotonic() - started < 2
    assert bootstrap in str(info.value)
    assert "refused" in str(info.value).lower()


async def test_port_in_use_fails_fast() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(BrokerError, match="already in use"):
            await EmbeddedBroker(port).start()


async def test_start_failure_reports_broker_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'tansu: cannot start, no storage' >&2\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setattr(crisis.broker, "tansu_binary", lambda: fake)
    broker = EmbeddedBroker(startup_timeout=10)
    started = time.monotonic()
    with pytest.raises(BrokerError) as info:
        await broker.start()
    assert time.monotonic() - started < 3, "a broker that exits must fail the start at once, not time out"
    message = str(info.value)
    assert "exited with code 0" in message
    assert "cannot start, no storage" in message
    assert not broker.running


# ------------------------------------------------------------------------------------------------ no orphans

_HOLDS_A_BROKER = """
    import asyncio, signal
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    from crisis.broker import EmbeddedBroker

    async def main():
        async with EmbeddedBroker() as broker:
            print("BROKER", broker.pid, broker.port, flush=True)
            await asyncio.sleep(60)

    asyncio.run(main())
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_broker_dies_with_its_parent(sig: signal.Signals, spawn: _Spawner) -> None:
    child = spawn.child(_HOLDS_A_BROKER)
    _, pid_text, port_text = child.wait_for_line("BROKER ").split()
    broker_pid, port = int(pid_text), int(port_text)
    spawn.brokers.append(broker_pid)
    assert _alive(broker_pid) and _is_tansu(broker_pid)
    assert _port_open(port)

    child.signal_group(sig)  # like Ctrl-C for SIGINT: the child's group, which the broker is not in
    child.proc.wait(timeout=10)
    assert _wait_gone(broker_pid, timeout=5), f"orphaned Tansu pid {broker_pid} after {sig.name}"
    assert not _port_open(port)
    if sig == signal.SIGINT:
        assert "broker.stopped" in child.output(), "Ctrl-C must stop the broker through the clean path"


_RUNS_THE_CLI = """
    import signal
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from crisis.broker import run_broker
    raise SystemExit(run_broker(None))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_run_broker_serves_until_signalled(sig: signal.Signals, spawn: _Spawner) -> None:
    child = spawn.child(_RUNS_THE_CLI)
    line = child.wait_for_line("Kafka broker listening on ")
    bootstrap = line.rsplit(" ", 1)[1]
    assert bootstrap.startswith("127.0.0.1:")
    assert await wait_for_kafka(bootstrap, timeout=5) == "tansu_cluster"
    brokers = [p for p in _children(child.proc.pid) if _is_tansu(p)]
    spawn.brokers += brokers
    assert len(brokers) == 1

    child.signal_group(sig)
    assert child.proc.wait(timeout=10) == 0, child.output()
    assert not _alive(brokers[0])
    assert not _port_open(int(bootstrap.rsplit(":", 1)[1]))


# ---------------------------------------------------------------------------------------------- mock cluster


async def test_mock_cluster_idempotent_producer_pause_resume_kill() -> None:
    async with MockCluster(brokers=1) as cluster:
        pid = cluster.pid
        assert [host for host, _ in cluster.addresses] == ["127.0.0.1"]
        assert _listening(pid) == set(cluster.addresses), "mock brokers must listen on loopback only"
        assert (await wait_for_kafka(cluster.bootstrap, timeout=5)).startswith("mockCluster")

        producer = AIOKafkaProducer(
            bootstrap_servers=cluster.bootstrap,
            enable_idempotence=True,
            acks="all",
            request_timeout_ms=5000,
        )
        await producer.start()
        try:
            first = await asyncio.wait_for(producer.send_and_wait("mock-smoke", b"one"), 10)

            cluster.pause()
            assert _state(pid) == "T"
            pending = await producer.send("mock-smoke", b"two", partition=first.partition)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.shield(pending), 0.5)

            cluster.resume()
            second = await asyncio.wait_for(pending, 10)
            assert (second.partition, second.offset) == (first.partition, first.offset + 1)
        finally:
            cluster.resume()
            await producer.stop()

        cluster.kill()
        assert not cluster.running
        assert not _alive(pid)
        assert not _port_open(cluster.addresses[0][1])


def test_mock_cluster_start_failure_reports_its_stderr() -> None:
    cluster = MockCluster(brokers=0)
    with pytest.raises(MockClusterError, match="brokers must be at least 1"):
        cluster.start()
    assert not cluster.running
