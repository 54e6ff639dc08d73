"""Live fan-out through Kafka: the crisis gateway beside the servers a Python team would otherwise write.

    pip install broadcaster          # the encode/broadcaster peer; used by this script only
    python bench/fanout.py [--sizes 100,1000,5000] [--servers gateway,broadcast,broadcaster]
                           [--deliveries 500000] [--rounds 3] [--paced-seconds 4]

Everything runs on loopback: the embedded broker (Tansu), one server process at a time, one process holding
all N subscriber connections (a minimal raw WebSocket client), and this process publishing through Kafka.
Servers compared, each fed from the same topic:
  gateway      crisis.gateway (KafkaBus -> Ledger -> Gateway), `?type=indicator.shared`, bearer key;
  broadcast    a plain `websockets` server: one aiokafka consumer, each record turned into one structured
               CloudEvent JSON text and sent with `websockets.broadcast()`;
  broadcaster  encode/broadcaster's Kafka backend behind a Starlette WebSocket endpoint under uvicorn
               (its README's shape: subscribe, then `await websocket.send_text(event.message)`).
Per server and N: RSS per idle connection; saturation rounds (events published as fast as Kafka takes
them, until `--deliveries` arrive): delivered messages/s and server CPU (user+sys) per delivery; paced
rounds (10,000 deliveries/s, i.e. 10,000/N events/s): publish-to-receive p50/p99. Rounds interleave
(S P S P S); medians are printed. Bounded: every wait has a timeout; counts are fixed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import itertools
import json
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support import cpu_seconds, crisis_activated, indicator_shared, stop

ROOT = Path(__file__).resolve().parents[1]
_counter = itertools.count()


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ============================================================================================ servers


async def serve_gateway(args: argparse.Namespace) -> None:
    from crisis.config import Settings
    from crisis.logging import configure_logging
    from crisis.runtime import stack

    configure_logging("warning", json=True)  # stderr: stdout carries the ready line only
    settings = Settings(
        kafka_bootstrap=args.bootstrap,
        kafka_topic=args.topic,
        kafka_idempotence=False,
        keys_file=Path(args.keys_file),
        gateway_port=args.port,
        log_level="warning",
        gateway_max_streams_per_key=1_000_000,  # every simulated subscriber shares one key
    )
    async with stack(settings, api=False) as running:
        if os.environ.get("FANOUT_PROFILE"):
            _profile(running.ledger)
        print("ready", flush=True)
        await asyncio.Event().wait()


def _profile(ledger: Any) -> None:
    """FANOUT_PROFILE=1 diagnostics on stderr: per folded batch, how late it came and how long the fold and
    fan-out took (wraps the ledger's private fold: a bench hook, not an API); garbage collections > 2 ms."""
    from datetime import UTC, datetime

    fold = ledger._fold
    stats: list[tuple[float, float, int]] = []

    def timed(batch: Any) -> None:
        t0 = time.perf_counter()
        late = (datetime.now(UTC) - batch[0].envelope.time).total_seconds() * 1000 if batch else 0
        fold(batch)
        stats.append((late, (time.perf_counter() - t0) * 1000, len(batch)))
        if len(stats) % 20 == 0:
            print(json.dumps(stats[-20:]), file=sys.stderr, flush=True)

    ledger._fold = timed
    started: list[float] = []

    def gc_watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            ms = (time.perf_counter() - started.pop()) * 1000
            if ms > 2:
                print(f"gc gen{info['generation']} {ms:.1f} ms", file=sys.stderr, flush=True)

    gc.callbacks.append(gc_watch)


async def serve_broadcast(args: argparse.Namespace) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    conns: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        conns.add(ws)
        try:
            await ws.wait_closed()
        finally:
            conns.discard(ws)

    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap, group_id=None, fetch_max_wait_ms=10, enable_auto_commit=False
    )
    await consumer.start()
    parts = [TopicPartition(args.topic, p) for p in sorted(consumer.partitions_for_topic(args.topic) or [])]
    consumer.assign(parts)
    await consumer.seek_to_end(*parts)
    for tp in parts:
        await consumer.position(tp)
    async with serve(handler, "127.0.0.1", args.port, compression=None, ping_interval=20):
        print("ready", flush=True)
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for r in records:
                    event = {k[3:]: v.decode() for k, v in r.headers if k.startswith("ce_")}
                    event["data"] = json.loads(r.value)
                    broadcast(conns, json.dumps(event, separators=(",", ":")))


def serve_broadcaster(args: argparse.Namespace) -> None:
    import uvicorn
    from broadcaster import Broadcast
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    hub = Broadcast(f"kafka://{args.bootstrap}")

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        async with hub.subscribe(channel=args.topic) as subscriber:
            async for event in subscriber:  # type: ignore[union-attr]  # broadcaster's own annotation
                assert event is not None
                await websocket.send_text(event.message)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        await hub.connect()
        print("ready", flush=True)
        yield
        await hub.disconnect()

    app = Starlette(routes=[WebSocketRoute("/v1/stream", endpoint)], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


# ============================================================================================ clients


@dataclass
class Stats:
    received: int = 0
    first: float = 0.0
    last: float = 0.0
    latency: bool = False
    samples: list[float] = field(default_factory=list)


class RawClient(asyncio.Protocol):
    """The least a WebSocket client can do: handshake, split frames, count, answer pings."""

    def __init__(self, stats: Stats, request: bytes) -> None:
        self.stats = stats
        self.request = request
        self.buffer = b""
        self.open = False
        self.greeted = 0
        self.ready = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.warmup = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"lost before ready: {exc}"))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buffer + data if self.buffer else data
        if not self.open:
            response, sep, rest = buf.partition(b"\r\n\r\n")
            if not sep:
                self.buffer = buf
                return
            if not response.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(response.split(b"\r\n", 1)[0].decode()))
                return
            self.open, buf = True, rest
            if self.warmup == 0:
                self.ready.set_result(None)
        stats, pos, end, count = self.stats, 0, len(buf), 0
        while end - pos >= 2:
            op, size = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            head = 2
            if size == 126:
                if end - pos < 4:
                    break
                size, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif size == 127:
                if end - pos < 10:
                    break
                size, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if end - pos < head + size:
                break
            if op == 0x1:
                if self.greeted < self.warmup:
                    self.greeted += 1
                    if self.greeted == self.warmup:
                        self.ready.set_result(None)
                else:
                    count += 1
                    if stats.latency:
                        i = buf.find(b"ts=", pos + head, pos + head + size)
                        if i >= 0:
                            j = buf.find(b'"', i)
                            stats.samples.append(now - float(buf[i + 3 : j]))
            elif op == 0x9 and self.transport is not None:  # ping: a masked pong with the same payload
                payload = buf[pos + head : pos + head + size]
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
            pos += head + size
        self.buffer = buf[pos:] if pos < end else b""
        if count:
            if not stats.received:
                stats.first = now
            stats.received += count
            stats.last = now


def handshake(host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    nonce = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {nonce}",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def clients_main() -> None:
    """Commands in on stdin, one JSON object per line; one JSON answer per command on stdout."""
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    stats = Stats()
    protocols: list[RawClient] = []
    while line := await reader.readline():
        cmd = json.loads(line)
        answer: dict[str, Any] = {}
        if cmd["cmd"] == "connect":
            started = time.monotonic()
            request = handshake("127.0.0.1", cmd["port"], cmd["path"], cmd["headers"])
            # One connection alone first: encode/broadcaster loses subscribers that arrive while its
            # first subscription is still waiting for a Kafka assignment. Then waves of 250 (the
            # listen backlog is finite).
            for i, size in enumerate([1, *([250] * ((cmd["n"] - 1) // 250)), (cmd["n"] - 1) % 250]):
                if size == 0:
                    continue
                wave = []
                for _ in range(size):
                    proto = RawClient(stats, request)
                    proto.warmup = cmd["warmup"]
                    wave.append(proto)
                    await loop.create_connection(lambda p=proto: p, "127.0.0.1", cmd["port"])  # type: ignore[misc]
                async with asyncio.timeout(60):
                    await asyncio.gather(*(p.ready for p in wave))
                protocols += wave
                if i == 0:
                    await asyncio.sleep(1.0)
            answer = {"connected": len(protocols), "seconds": time.monotonic() - started}
        elif cmd["cmd"] == "reset":
            stats = Stats(latency=cmd.get("latency", False))
            for p in protocols:
                p.stats = stats
        elif cmd["cmd"] == "wait":
            deadline = time.monotonic() + cmd["timeout"]
            # Polling: the counters are bumped in data_received, far too often to signal each time.
            while stats.received < cmd["count"] and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            q = statistics.quantiles(stats.samples, n=100) if len(stats.samples) > 1 else [float("nan")] * 99
            answer = {
                "received": stats.received,
                "first": stats.first,
                "last": stats.last,
                "p50": q[49] * 1000,
                "p99": q[98] * 1000,
                "samples": len(stats.samples),
                "cpu": cpu_seconds(os.getpid()),
            }
        elif cmd["cmd"] == "quit":
            return
        print(json.dumps(answer), flush=True)


# ============================================================================================ orchestration


class Process:
    """A child speaking one JSON line per command."""

    def __init__(self, *argv: str) -> None:
        from crisis.broker import parent_death_preexec

        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__)), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            preexec_fn=parent_death_preexec(),  # children die with this script
        )

    def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child exited ({self.proc.poll()}) on {cmd['cmd']}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def wait_ready(self, port: int, timeout: float = 60) -> None:
        """The child says "ready" (its Kafka side is up), then its port accepts connections."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while self.proc.stdout.readline().strip() != b"ready":
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server not ready (exit code {self.proc.poll()})")
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError("server port not open in time")

    def stop(self) -> None:
        stop(self.proc, grace=10)


@dataclass
class Result:
    server: str
    n: int
    rss_per_conn_kib: float = float("nan")
    rate: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    delivered: list[int] = field(default_factory=list)
    expected: list[int] = field(default_factory=list)
    note: str = ""


def indicator(crisis_id: str, stamp: bool) -> Any:
    """Labelled with its send time (paced rounds measure latency) or a sequence number."""
    n = next(_counter)
    return indicator_shared(crisis_id, f"ts={time.time():.6f}" if stamp else f"n={n}")


async def run_one(server: str, n: int, args: argparse.Namespace, bootstrap: str, workdir: Path) -> Result:
    from crisis.broker import free_port
    from crisis.bus.kafka import KafkaBus
    from crisis.config import Settings
    from crisis.domain.enums import Role
    from crisis.keys import KeyStore

    result = Result(server, n)
    topic = f"fanout-{server}-{n}-{uuid.uuid4().hex[:6]}"
    settings = Settings(
        kafka_bootstrap=bootstrap, kafka_topic=topic, kafka_idempotence=False, kafka_partitions=3
    )
    keys_file = workdir / f"keys-{topic}.json"
    _, key = KeyStore(keys_file).add("vidshare", Role.PROVIDER)
    async with KafkaBus(settings) as bus:
        crisis = crisis_activated("fan-out bench")
        await bus.publish([crisis])
        port = free_port()
        srv = Process("serve", server, "--port", str(port), "--bootstrap", bootstrap, "--topic", topic,
                      "--keys-file", str(keys_file))  # fmt: skip
        clients = Process("clients")
        try:
            srv.wait_ready(port)
            await asyncio.sleep(0.5)
            gc.collect()
            rss0 = rss_kib(srv.proc.pid)
            path = "/v1/stream?type=indicator.shared" if server == "gateway" else "/v1/stream"
            headers = {"Authorization": f"Bearer {key}"} if server == "gateway" else {}
            warmup = 2 if server == "gateway" else 0  # `subscribed` and the crisis's `state`
            clients.ask(cmd="connect", port=port, path=path, headers=headers, n=n, warmup=warmup)
            await asyncio.sleep(2.0)  # idle: let allocations settle and subscriptions land
            result.rss_per_conn_kib = (rss_kib(srv.proc.pid) - rss0) / n
            for kind in ["saturate", "paced"] * (args.rounds - 1) + ["saturate"]:
                if kind == "saturate":
                    await saturate(bus, crisis.subject, n, args, srv, clients, result)
                    if result.delivered[-1] < result.expected[-1]:
                        result.note = f"round timed out after {args.timeout:g} s; later rounds skipped"
                        break
                else:
                    await paced(bus, crisis.subject, n, args, clients, result)
        except Exception as exc:  # a peer that cannot keep up or breaks is reported, not fatal
            result.note = f"{type(exc).__name__}: {exc}"[:120]
        finally:
            with contextlib.suppress(Exception):
                clients.ask(cmd="quit")
            clients.stop()
            srv.stop()
    return result


async def saturate(
    bus: Any, crisis_id: str, n: int, args: argparse.Namespace, srv: Process, clients: Process, result: Result
) -> None:
    events = max(1, args.deliveries // n)
    batch = [indicator(crisis_id, stamp=False) for _ in range(events)]
    clients.ask(cmd="reset")
    cpu0 = cpu_seconds(srv.proc.pid)
    start = time.time()
    for i in range(0, events, 1000):
        await bus.publish(batch[i : i + 1000])
    answer = await asyncio.to_thread(clients.ask, cmd="wait", count=events * n, timeout=args.timeout)
    cpu = cpu_seconds(srv.proc.pid) - cpu0
    delivered = answer["received"]
    result.delivered.append(delivered)
    result.expected.append(events * n)
    if delivered:
        result.rate.append(delivered / (answer["last"] - start))
        result.cpu_us.append(cpu / delivered * 1e6)
    await asyncio.sleep(0.5)


async def paced(
    bus: Any, crisis_id: str, n: int, args: argparse.Namespace, clients: Process, result: Result
) -> None:
    interval = n / 10_000  # one event reaches n subscribers: 10,000 deliveries/s
    count = max(2, int(args.paced_seconds / interval))
    clients.ask(cmd="reset", latency=True)
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    for _ in range(count):
        await bus.publish([indicator(crisis_id, stamp=True)])
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    answer = await asyncio.to_thread(clients.ask, cmd="wait", count=count * n, timeout=args.timeout)
    result.p50.append(answer["p50"])
    result.p99.append(answer["p99"])
    await asyncio.sleep(0.5)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(results: list[Result]) -> str:
    rows = [
        "| server | N | delivered msgs/s | server CPU µs/delivery | paced 10k/s p50 / p99 ms "
        "| RSS KiB/idle conn | delivered / expected |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        got = f"{sum(r.delivered):,} / {sum(r.expected):,}" + (f" ({r.note})" if r.note else "")
        rows.append(
            f"| {r.server} | {r.n:,} | {_median(r.rate):,.0f} | {_median(r.cpu_us):.2f} | "
            f"{_median(r.p50):.1f} / {_median(r.p99):.1f} | {r.rss_per_conn_kib:.1f} | {got} |"
        )
    return "\n".join(rows)


async def orchestrate(args: argparse.Namespace) -> None:
    from crisis.broker import EmbeddedBroker

    raise_fd_limit()
    sizes = [int(s) for s in args.sizes.split(",")]
    servers = args.servers.split(",")
    results: list[Result] = []
    workdir = Path(tempfile.mkdtemp(prefix="crisis-fanout-"))
    async with EmbeddedBroker() as broker:
        for n in sizes:
            for server in servers:
                print(f"# {server}, N={n} ...", file=sys.stderr, flush=True)
                results.append(await run_one(server, n, args, broker.bootstrap, workdir))
                print(table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(f"\n{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, loopback; medians of {args.rounds} "
          f"saturation rounds ({args.deliveries:,} deliveries each) and {args.rounds - 1} paced rounds "
          f"({args.paced_seconds:g} s each)\n")  # fmt: skip
    print(table(results))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="role")
    serve = sub.add_parser("serve")
    serve.add_argument("kind", choices=["gateway", "broadcast", "broadcaster"])
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--bootstrap", required=True)
    serve.add_argument("--topic", required=True)
    serve.add_argument("--keys-file", default="")
    sub.add_parser("clients")
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--servers", default="gateway,broadcast,broadcaster")
    parser.add_argument("--deliveries", type=int, default=500_000, help="per saturation round")
    parser.add_argument("--rounds", type=int, default=3, help="saturation rounds (paced rounds: one fewer)")
    parser.add_argument("--paced-seconds", type=float, default=4.0)
    parser.add_argument("--timeout", type=float, default=90.0, help="longest wait for one round's deliveries")
    args = parser.parse_args()
    if args.role == "serve":
        raise_fd_limit()
        if args.kind == "broadcaster":
            serve_broadcaster(args)
        else:
            asyncio.run(serve_gateway(args) if args.kind == "gateway" else serve_broadcast(args))
    elif args.role == "clients":
        asyncio.run(clients_main())
    else:
        asyncio.run(orchestrate(args))


if __name__ == "__main__":
    main()
