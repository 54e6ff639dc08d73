"""One API process beside N slowloris connections: how fast they are cut, and what a normal client sees.

    python bench/slowloris.py [--sizes 0,250,1000] [--seconds 12]

Starts the embedded broker and one `crisis serve api` subprocess (default deadlines: 10 s for a request's
head, 10 s for its body). Each round opens N connections from a process of their own, half dripping a
request head and half a request body, one byte a second; once all are connected, one normal client reads
`GET /v1/crises` back to back for the round's time. Prints, per round, how many slow connections the server
closed, with what and how long after they connected (at most), the normal client's latencies, and the
API's CPU over the round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
from support import cpu_seconds, stop, wait_ready

from crisis.broker import EmbeddedBroker, free_port
from crisis.domain.enums import Role
from crisis.keys import KeyStore

GIVE_UP_S = 30.0


async def slow(port: int, key: str, body: bool, connected: asyncio.Semaphore) -> tuple[float, bytes]:
    """Drips one byte a second; returns when the server closed (seconds) and the status it sent, if any."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    connected.release()
    start = time.monotonic()
    until = start + GIVE_UP_S
    if body:
        head = f"POST /v1/crises HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {key}\r\n"
        writer.write(f"{head}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n".encode())
    else:
        writer.write(b"GET /v1/crises HTTP/1.1\r\nHost: b\r\nX-Drip: ")
    read = asyncio.ensure_future(reader.read(64))
    try:
        while not read.done() and time.monotonic() < until:
            with contextlib.suppress(ConnectionError):
                writer.write(b"a")
            await asyncio.wait({read}, timeout=1.0)
        if not read.done():
            return float("inf"), b""
        try:
            answer = read.result()
        except ConnectionError:
            answer = b""
        return time.monotonic() - start, answer[9:12]
    finally:
        read.cancel()
        writer.close()


async def reads(url: str, key: str, until: float) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        while time.monotonic() < until:
            start = time.perf_counter()
            r = await http.get("/v1/crises")
            r.raise_for_status()
            latencies.append(time.perf_counter() - start)
    return latencies


async def drip_all(port: int, key: str, n: int, pipe: Connection) -> None:
    connected = asyncio.Semaphore(0)
    drippers = [asyncio.ensure_future(slow(port, key, i % 2 == 1, connected)) for i in range(n)]
    for _ in range(n):
        await connected.acquire()
    pipe.send("connected")
    pipe.send(await asyncio.gather(*drippers))


def drippers_process(port: int, key: str, n: int, pipe: Connection) -> None:
    """The slow connections live in a process of their own: their cost never lands on the normal client."""
    asyncio.run(drip_all(port, key, n, pipe))


async def round_(url: str, port: int, key: str, n: int, seconds: float, pid: int) -> None:
    cpu = cpu_seconds(pid)
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.Process(target=drippers_process, args=(port, key, n, theirs))
    child.start()
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, ours.recv) == "connected"  # then the normal client starts
    latencies = await reads(url, key, time.monotonic() + seconds)
    cut: list[tuple[float, bytes]] = await loop.run_in_executor(None, ours.recv)
    await loop.run_in_executor(None, child.join)
    cpu = cpu_seconds(pid) - cpu
    closed = [s for s, _ in cut if s != float("inf")]
    answered = sum(1 for _, status in cut if status == b"408")
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    slowest = f"{max(closed):.2f} s" if closed else "-"
    print(
        f"| {n:,} | {len(closed):,} / {n:,} | {answered:,} | {slowest} | {len(latencies):,} | "
        f"{q[49] * 1000:.1f} / {q[98] * 1000:.1f} | {cpu:.2f} |"
    )


async def run(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    async with EmbeddedBroker() as broker:
        workdir = Path(tempfile.mkdtemp(prefix="crisis-bench-"))
        _, key = KeyStore(workdir / "keys.json").add("hub", Role.COORDINATOR)
        port = free_port()
        env = {
            **os.environ,
            "CRISIS_KAFKA_BOOTSTRAP": broker.bootstrap,
            "CRISIS_KAFKA_TOPIC": f"bench-{uuid.uuid4().hex[:8]}",
            "CRISIS_KEYS_FILE": str(workdir / "keys.json"),
            "CRISIS_KAFKA_IDEMPOTENCE": "false",  # the embedded broker cannot run the idempotent producer
            "CRISIS_LOG_LEVEL": "warning",
            # The normal client reads back to back: its key must not meet the rate limit.
            "CRISIS_RATE_LIMIT_PER_S": "1000000",
            "CRISIS_RATE_LIMIT_BURST": "1000000",
        }
        cmd = [sys.executable, "-m", "crisis.cli", "serve", "api", "--port", str(port)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)  # noqa: ASYNC220 -- spawn only, no wait
        try:
            url = f"http://127.0.0.1:{port}"
            await wait_ready(url, proc)
            print(
                f"{args.seconds:g} s of reads a round, deadlines 10 s (head) / 10 s (body), "
                f"{os.cpu_count()} CPUs\n"
            )
            print(
                "| slow connections | closed by the server | answered 408 | last closed after "
                "| normal reads | read p50 / p99 ms | API CPU s |"
            )
            print("|---:|---:|---:|---:|---:|---:|---:|")
            for n in sizes:
                await round_(url, port, key, n, args.seconds, proc.pid)
        finally:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", default="0,250,1000")
    parser.add_argument("--seconds", type=float, default=12.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
