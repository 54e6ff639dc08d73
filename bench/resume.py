"""A resume from the start of a long log, and what it costs everyone else.

    python bench/resume.py [--events 100000] [--rounds 5] [--crises 12] [--live-rate 100]
                           [--probe-every 0.02] [--window 2] [--code DIR] [--profile FILE]

Everything on loopback: the embedded broker (Tansu); one server process running the API and the gateway
together, as `crisis up` does; this process publishing and measuring; one more process for the resuming
client (a minimal raw WebSocket client that counts frames, at nice 10: it stands for a client on another
machine, so its parsing is neither what is measured nor taken from the others' CPU).
Steps: `--events` indicators are published over `--crises` crises and folded by the server; then
`--rounds` times a baseline window (`--window` s) and a catch-up window, under the same background load:
one event every 1/`--live-rate` s to another crisis, timed from publish to arrival at a live subscriber,
and `GET /v1/crises` every `--probe-every` s, timed. In each catch-up window a new client resumes from the
cursor of the log's start. Samples of all baseline windows and of all catch-up windows are pooled.
Printed: (a) time for the resuming client to receive all events, (b) server CPU per caught-up event
(user+sys over the window, raw and less the baseline's rate), (c) live-delivery p50/p99 and (d) API
p50/p99 in both windows. `--code DIR` runs the server from another checkout (a before/after comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from support import cpu_seconds, crisis_activated, indicator_shared

ROOT = Path(__file__).resolve().parents[1]


async def serve(args: argparse.Namespace) -> None:
    from crisis.config import Settings
    from crisis.logging import configure_logging
    from crisis.runtime import stack

    configure_logging("warning", json=True)  # stderr: stdout carries the ready line only
    settings = Settings(
        kafka_bootstrap=args.bootstrap,
        kafka_topic=args.topic,
        kafka_idempotence=False,
        keys_file=Path(args.keys_file),
        api_port=0,
        gateway_port=0,
        log_level="warning",
        rate_limit_per_s=10_000,  # the prober measures latency, not the rate limit
        rate_limit_burst=10_000,
    )
    async with stack(settings) as running:
        print("ready", running.api_url, running.ws_url, flush=True)
        await asyncio.Event().wait()


# ============================================================================================ resuming client


class Counter(asyncio.Protocol):
    """Handshake, split frames, count CloudEvents, answer pings: the least a client can do."""

    def __init__(self, request: bytes, want: int) -> None:
        self.request, self.want = request, want
        self.buffer = b""
        self.open = False
        self.count = 0
        self.done = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"closed after {self.count} events: {exc}"))

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        if not self.open:
            response, sep, rest = buf.partition(b"\r\n\r\n")
            if not sep:
                self.buffer = buf
                return
            if not response.startswith(b"HTTP/1.1 101"):
                self.done.set_exception(ConnectionError(response.split(b"\r\n", 1)[0].decode()))
                return
            self.open, buf = True, rest
        pos, end = 0, len(buf)
        while end - pos >= 2:
            op, size, head = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
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
            start = pos + head
            if op == 0x1 and buf.startswith(b'{"specversion"', start):
                self.count += 1
            elif op == 0x1 and buf.startswith(b'{"type":"gap"', start):
                print(buf[start : start + size].decode(), file=sys.stderr, flush=True)
            elif op == 0x8:
                print("closed:", buf[start : start + size][2:].decode(errors="replace"), file=sys.stderr)
            elif op == 0x9 and self.transport is not None:  # ping: a masked pong with the same payload
                payload = buf[start : start + size]
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
            pos = start + size
        self.buffer = buf[pos:] if pos < end else b""
        if self.count >= self.want and not self.done.done():
            self.done.set_result(None)


def handshake(port: int, path: str, key: str) -> bytes:
    nonce = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {nonce}",
        "Sec-WebSocket-Version: 13",
        f"Authorization: Bearer {key}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def catch_up(args: argparse.Namespace) -> None:
    """Waits for "go" on stdin, resumes, prints how long all `--want` events took."""
    # This process stands for a client on another machine: on a shared 2-core box it yields the CPU to the
    # server, the broker and the measuring process first, so what it costs is not counted against them.
    os.nice(10)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    started = time.monotonic()
    proto = Counter(handshake(args.port, args.path, args.key), args.want)
    await loop.create_connection(lambda: proto, "127.0.0.1", args.port)
    try:
        async with asyncio.timeout(args.timeout):
            await proto.done
        result: dict[str, Any] = {"seconds": time.monotonic() - started, "received": proto.count}
    except (TimeoutError, ConnectionError) as exc:
        result = {"seconds": time.monotonic() - started, "received": proto.count, "error": str(exc)}
    print(json.dumps(result), flush=True)


# ============================================================================================ orchestration


def child(*argv: str, code: Path) -> subprocess.Popen[bytes]:
    from crisis.broker import parent_death_preexec

    return subprocess.Popen(
        [sys.executable, str(Path(__file__)), *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(code)},
        preexec_fn=parent_death_preexec(),  # children die with this script
    )


def indicator(crisis_id: str, n: int) -> Any:
    return indicator_shared(crisis_id, f"n={n}")


class Load:
    """Live events timed from publish to a live subscriber, and API requests timed, tagged by window."""

    def __init__(self, bus: Any, crisis_id: str, api_url: str, ws_url: str, key: str, api_key: str) -> None:
        self.bus, self.crisis_id = bus, crisis_id
        self.api_url, self.ws_url, self.key, self.api_key = api_url, ws_url, key, api_key
        self.window = ""
        self.sent: dict[str, tuple[float, str]] = {}
        self.live: dict[str, list[float]] = {}
        self.api: dict[str, list[float]] = {}
        self.errors = 0

    async def subscriber(self, ready: asyncio.Event) -> None:
        from websockets.asyncio.client import connect

        url = f"{self.ws_url}?crisis={self.crisis_id}&type=indicator.shared"
        headers = {"Authorization": f"Bearer {self.key}"}
        async with connect(url, additional_headers=headers, compression=None, max_size=None) as ws:
            await ws.recv()  # subscribed
            await ws.recv()  # the crisis's state
            ready.set()
            async for message in ws:
                now = time.perf_counter()
                body = json.loads(message)
                sent = self.sent.pop(body.get("id", ""), None)
                if sent is not None:
                    self.live.setdefault(sent[1], []).append((now - sent[0]) * 1000)

    async def publisher(self, rate: float) -> None:
        n = 0
        while True:
            env = indicator(self.crisis_id, n)
            n += 1
            self.sent[env.id] = (time.perf_counter(), self.window)
            await self.bus.publish([env])
            await asyncio.sleep(1 / rate)

    async def prober(self, every: float) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with httpx.AsyncClient(base_url=self.api_url, headers=headers, timeout=30) as http:
            while True:
                window, t0 = self.window, time.perf_counter()
                response = await http.get("/v1/crises")
                if response.status_code != 200:
                    self.errors += 1
                self.api.setdefault(window, []).append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(every)


def profiler(pid: int, out: str) -> subprocess.Popen[bytes] | None:
    """`--profile FILE`: py-spy (installed separately) samples the server through the resume rounds."""
    if not out:
        return None
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "-p",
            str(pid),
            "-o",
            out,
            "--format",
            "raw",
            "-r",
            "200",
        ]
    )
    time.sleep(1.0)  # attached before the first round starts
    return spy


async def resume_round(
    pid: int, port: int, path: str, key: str, load: Load, args: argparse.Namespace
) -> tuple[dict[str, Any], float, float, float]:
    """A baseline window, then one client resumes from the log's start.

    Returns the client's report, the server's CPU seconds and the wall time of the catch-up, and the
    server's CPU rate in the baseline window.
    """
    want, timeout = str(args.events), str(args.timeout)
    client = child("catch-up", "--port", str(port), "--path", path, "--key", key,
                   "--want", want, "--timeout", timeout, code=ROOT)  # fmt: skip
    assert client.stdin is not None
    assert client.stdout is not None
    try:
        load.window = "baseline"  # meanwhile the client process imports, then waits for "go"
        cpu0, w0 = cpu_seconds(pid), time.perf_counter()
        await asyncio.sleep(args.window)
        cpu1, w1 = cpu_seconds(pid), time.perf_counter()
        load.window = "catch-up"
        client.stdin.write(b"go\n")
        client.stdin.flush()
        result: dict[str, Any] = json.loads(await asyncio.to_thread(client.stdout.readline))
        cpu2, w2 = cpu_seconds(pid), time.perf_counter()
        load.window = "between"
    finally:
        client.kill()
        client.wait(10)
    return result, cpu2 - cpu1, w2 - w1, (cpu1 - cpu0) / (w1 - w0)


def pct(values: Sequence[float]) -> str:
    if len(values) < 2:
        return "n/a"
    q = statistics.quantiles(values, n=100)
    return f"{q[49]:.1f} / {q[98]:.1f} ms (n={len(values)})"


async def orchestrate(args: argparse.Namespace) -> None:
    from websockets.asyncio.client import connect

    from crisis.broker import EmbeddedBroker
    from crisis.bus.kafka import KafkaBus
    from crisis.config import Settings
    from crisis.domain.enums import Role
    from crisis.keys import KeyStore

    code: Path = args.code
    workdir = Path(tempfile.mkdtemp(prefix="crisis-resume-"))
    keys_file = workdir / "keys.json"
    store = KeyStore(keys_file)
    _, key = store.add("vidshare", Role.PROVIDER)
    _, api_key = store.add("hub", Role.COORDINATOR)
    async with EmbeddedBroker() as broker:
        topic = f"resume-{uuid.uuid4().hex[:8]}"
        settings = Settings(kafka_bootstrap=broker.bootstrap, kafka_topic=topic, kafka_idempotence=False)
        async with KafkaBus(settings) as bus:
            srv = child("serve", "--bootstrap", broker.bootstrap, "--topic", topic, "--keys-file",
                        str(keys_file), code=code)  # fmt: skip
            tasks: list[asyncio.Task[None]] = []
            try:
                assert srv.stdout is not None
                line = await asyncio.to_thread(srv.stdout.readline)
                if not line.startswith(b"ready"):
                    raise RuntimeError(f"server did not start: {line!r}")
                _, api_url, ws_url = line.decode().split()
                # The cut at the log's start: what a client that saw nothing yet would resume from.
                async with connect(f"{ws_url}", additional_headers={"Authorization": f"Bearer {key}"}) as ws:
                    start_cursor = json.loads(await ws.recv())["cursor"]
                crises = [crisis_activated("resume bench") for _ in range(args.crises)]
                live = crisis_activated("resume bench")
                await bus.publish([*crises, live])
                t0 = time.perf_counter()
                for i in range(0, args.events, 1000):
                    n = min(1000, args.events - i)
                    await bus.publish(
                        [indicator(crises[(i + j) % len(crises)].subject, i + j) for j in range(n)]
                    )
                print(f"# published {args.events:,} events in {time.perf_counter() - t0:.1f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
                load = Load(bus, live.subject, api_url, ws_url, key, api_key)
                ready = asyncio.Event()
                tasks.append(asyncio.create_task(load.subscriber(ready)))
                await asyncio.wait_for(ready.wait(), 60)
                load.window = "settle"
                tasks.append(asyncio.create_task(load.publisher(args.live_rate)))
                tasks.append(asyncio.create_task(load.prober(args.probe_every)))
                # The server has folded everything once live events arrive promptly again.
                while len(load.live.get("settle", [])) < 20:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                port = int(ws_url.rsplit(":", 1)[1].split("/")[0])
                ids = ",".join(c.subject for c in crises)
                path = f"/v1/stream?crisis={ids}&type=indicator.shared&cursor={start_cursor}"
                rounds = []
                spy = profiler(srv.pid, args.profile)
                for _ in range(args.rounds):
                    rounds.append(await resume_round(srv.pid, port, path, key, load, args))
                    load.window = "between"
                    await asyncio.sleep(0.5)  # live samples of the round arrive
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(30)
            finally:
                for task in tasks:
                    task.cancel()
                srv.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    srv.wait(10)
                if srv.poll() is None:
                    srv.kill()
    print(f"\n{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, loopback, embedded broker; "
          f"load average {os.getloadavg()[0]:.1f} at the end")  # fmt: skip
    print(f"server code: {code}")
    print(f"events in the log: {args.events:,} over {args.crises} crises; live load {args.live_rate:g} "
          f"events/s, GET /v1/crises every {args.probe_every * 1000:g} ms; {args.rounds} rounds of a "
          f"{args.window:g} s baseline window then a resume from the log's start")  # fmt: skip
    for i, (result, spent, wall, base_rate) in enumerate(rounds, 1):
        got = result["received"]
        net = spent - base_rate * wall
        per = net / got * 1e6 if got else float("nan")
        raw = spent / got * 1e6 if got else float("nan")
        print(f"round {i}: (a) resuming client received {got:,} / {args.events:,} events in "
              f"{result['seconds']:.2f} s; (b) server CPU per caught-up event {raw:.1f} us "
              f"({spent:.2f} s over {wall:.2f} s; {per:.1f} us net of the baseline's "
              f"{base_rate * 100:.0f} % of a core)"
              + (f"  [{result['error']}]" if "error" in result else ""))  # fmt: skip
    print(f"(c) live delivery p50 / p99: baseline {pct(load.live.get('baseline', []))}; "
          f"during catch-up {pct(load.live.get('catch-up', []))}")  # fmt: skip
    print(f"(d) GET /v1/crises p50 / p99: baseline {pct(load.api.get('baseline', []))}; "
          f"during catch-up {pct(load.api.get('catch-up', []))}")  # fmt: skip
    if load.errors:
        print(f"    {load.errors} API requests did not answer 200")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="role")
    srv = sub.add_parser("serve")
    srv.add_argument("--bootstrap", required=True)
    srv.add_argument("--topic", required=True)
    srv.add_argument("--keys-file", required=True)
    cli = sub.add_parser("catch-up")
    cli.add_argument("--port", type=int, required=True)
    cli.add_argument("--path", required=True)
    cli.add_argument("--key", required=True)
    cli.add_argument("--want", type=int, required=True)
    cli.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--crises", type=int, default=12)
    parser.add_argument("--live-rate", type=float, default=100.0, help="live events per second")
    parser.add_argument("--probe-every", type=float, default=0.02, help="seconds between API requests")
    parser.add_argument("--rounds", type=int, default=5, help="resuming clients, one after another")
    parser.add_argument("--window", type=float, default=2.0, help="baseline window before each round, s")
    parser.add_argument("--timeout", type=float, default=120.0, help="longest wait for the catch-up")
    parser.add_argument("--profile", default="", help="py-spy the server over the rounds into this file")
    parser.add_argument("--code", default="", help="run the server from this checkout (before/after)")
    args = parser.parse_args()
    args.code = Path(args.code).resolve() if args.code else ROOT
    if args.role == "serve":
        asyncio.run(serve(args))
    elif args.role == "catch-up":
        asyncio.run(catch_up(args))
    else:
        asyncio.run(orchestrate(args))


if __name__ == "__main__":
    main()
