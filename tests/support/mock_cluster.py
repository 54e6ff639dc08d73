"""librdkafka's mock Kafka cluster in a process of its own, for fault tests.

As a script::

    python -m tests.support.mock_cluster 3      # prints "127.0.0.1:PORT,127.0.0.1:PORT,..." then sleeps

As a helper::

    with MockCluster(brokers=1) as cluster:          # or: async with MockCluster() as cluster
        producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, enable_idempotence=True, acks="all")
        cluster.pause(); cluster.resume(); cluster.kill()

The mock brokers live inside a confluent-kafka client object (``test.mock.num.brokers``) and listen on
127.0.0.1 only (librdkafka binds them to the loopback address; the script refuses to run otherwise). A second,
independent Kafka-protocol peer next to Tansu: it supports the idempotent producer, topics are auto-created
(4 partitions), but admin ``create_topics`` does not work and timestamps are synthetic.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

LOOPBACK = "127.0.0.1"
_SCRIPT = Path(__file__).resolve()


# ------------------------------------------------------------------------------------------------ script


def _exit_when_stdin_closes() -> None:
    """Orphan guard on any OS: the parent holds our stdin; when it goes away, so do we."""
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.mock_cluster", description=__doc__)
    parser.add_argument("brokers", nargs="?", type=int, default=1, help="number of mock brokers (default 1)")
    parser.add_argument(
        "--exit-on-stdin-eof", action="store_true", help="exit when stdin closes (set by MockCluster)"
    )
    args = parser.parse_args(argv)
    if args.brokers < 1:
        parser.error("brokers must be at least 1")

    from confluent_kafka import Producer  # only the script needs it

    # The client object owns the mock cluster: it must stay alive for as long as the brokers should.
    client = Producer(
        {"test.mock.num.brokers": args.brokers, "bootstrap.servers": "", "client.id": "crisis-mock-cluster"}
    )
    brokers = client.list_topics(timeout=10).brokers
    addresses = [f"{b.host}:{b.port}" for _, b in sorted(brokers.items())]
    outside = [a for a in addresses if a.rpartition(":")[0] != LOOPBACK]
    if len(addresses) != args.brokers or outside:
        print(f"mock cluster: unexpected broker addresses {addresses}", file=sys.stderr, flush=True)
        return 2
    print(",".join(addresses), flush=True)

    if args.exit_on_stdin_eof:
        threading.Thread(target=_exit_when_stdin_closes, name="stdin-watch", daemon=True).start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        client.flush(0)  # keeps the client (and with it the cluster) referenced to the end


# ------------------------------------------------------------------------------------------------ helper

_live: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_live):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
    _live.clear()


def _wait_stopped(pid: int, timeout: float = 2.0) -> None:
    """SIGSTOP is delivered asynchronously: on Linux, wait until every thread is really stopped."""
    task_dir = Path(f"/proc/{pid}/task")
    if not task_dir.is_dir():
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            states = {(t / "stat").read_text().rpartition(")")[2].split()[0] for t in task_dir.iterdir()}
        except OSError:
            return
        if states <= {"T", "t", "Z", "X"}:
            return
        time.sleep(0.001)


class MockClusterError(RuntimeError):
    pass


class MockCluster:
    """Runs this script as a child process (own process group, killed with its parent on Linux)."""

    def __init__(self, brokers: int = 1, *, startup_timeout: float = 20.0, stop_timeout: float = 5.0) -> None:
        self.brokers = brokers
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: BinaryIO | None = None  # read side of the child's (unlinked) stderr file
        self._bootstrap: str | None = None

    # ------------------------------------------------------------------------------ properties
    @property
    def bootstrap(self) -> str:
        if self._bootstrap is None:
            raise MockClusterError("the mock cluster has not been started")
        return self._bootstrap

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(h, int(p)) for h, _, p in (a.rpartition(":") for a in self.bootstrap.split(","))]

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise MockClusterError("the mock cluster has not been started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------------------ lifecycle
    def _spawn(self) -> subprocess.Popen[bytes]:
        from crisis.broker import parent_death_preexec

        if self.running:
            raise MockClusterError("the mock cluster is already running")
        fd, name = tempfile.mkstemp(prefix="crisis-mock-cluster-", suffix=".log")
        self._stderr = open(name, "rb")  # noqa: SIM115 - closed in stop()
        os.unlink(name)  # nothing is left behind, whatever happens to either process
        try:
            proc = subprocess.Popen(
                [sys.executable, str(_SCRIPT), str(self.brokers), "--exit-on-stdin-eof"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=fd,
                close_fds=True,
                process_group=0,
                preexec_fn=parent_death_preexec(),
            )
        finally:
            os.close(fd)
        _live.add(proc)
        self._proc = proc
        return proc

    def _read_bootstrap(self, proc: subprocess.Popen[bytes]) -> str:
        assert proc.stdout is not None
        deadline = time.monotonic() + self._startup_timeout
        data = b""
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MockClusterError(f"no bootstrap line within {self._startup_timeout:g}s")
            ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 0.1))
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    raise MockClusterError(f"the mock cluster exited with code {proc.wait(timeout=5)}")
                data += chunk
            elif proc.poll() is not None:
                raise MockClusterError(f"the mock cluster exited with code {proc.returncode}")
        return data.split(b"\n", 1)[0].decode().strip()

    def _started(self, proc: subprocess.Popen[bytes], read: BaseException | str) -> Self:
        if isinstance(read, BaseException):
            tail = self.stderr_tail()
            self.stop()
            if isinstance(read, MockClusterError):
                raise MockClusterError(f"{read}\n--- mock cluster stderr (tail) ---\n{tail}") from None
            raise read
        self._bootstrap = read
        return self

    def start(self) -> Self:
        proc = self._spawn()
        try:
            line: BaseException | str = self._read_bootstrap(proc)
        except BaseException as exc:
            line = exc
        return self._started(proc, line)

    async def astart(self) -> Self:
        proc = self._spawn()  # from the loop's thread: the parent-death signal is tied to the spawning thread
        try:
            line: BaseException | str = await asyncio.to_thread(self._read_bootstrap, proc)
        except BaseException as exc:
            line = exc
        return self._started(proc, line)

    def stderr_tail(self, lines: int = 20) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (after SIGCONT, in case it is paused), SIGKILL after ``stop_timeout``; reaps it."""
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                self._signal(signal.SIGTERM)
                self._signal(signal.SIGCONT)
                try:
                    proc.wait(timeout=self._stop_timeout)
                except subprocess.TimeoutExpired:
                    self._signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                self._signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            _live.discard(proc)
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def _signal(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)

    def _require_running(self) -> None:
        if not self.running:
            raise MockClusterError("the mock cluster is not running")

    def pause(self) -> None:
        """Freeze every mock broker (SIGSTOP): connections stay open, nothing is answered. Returns once
        every thread is stopped."""
        self._require_running()
        self._signal(signal.SIGSTOP)
        _wait_stopped(self.pid)

    def resume(self) -> None:
        self._require_running()
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """Crash the whole mock cluster (SIGKILL) and reap it. Its state is gone for good."""
        self._require_running()
        self._signal(signal.SIGKILL)
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":
    raise SystemExit(main())
