"""Indicators/s accepted through POST /v1/crises/{id}/indicators by one API process, acks=all, loopback.

    python bench/ingest.py [--seconds 10] [--clients 4] [--batch 1000] [--journal] [--store]

Starts the embedded broker and one `crisis serve api` subprocess, opens a crisis, then several clients post
batches of fresh sha256 indicators for a fixed time. Counts only items the API answered `created`.
`--journal` keeps the log on disk as `crisis up` does (each acknowledged batch fsynced before the answer);
`--store` gives the API process a local state store (CRISIS_STATE_DIR), as `crisis up` and `crisis serve` do.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from support import cpu_seconds, thread_cpu_seconds, wait_ready

from crisis.broker import EmbeddedBroker, free_port
from crisis.domain.enums import Role
from crisis.keys import KeyStore

_counter = itertools.count()


def batch(size: int) -> list[dict[str, str]]:
    return [
        {"kind": "sha256", "value": hashlib.sha256(str(next(_counter)).encode()).hexdigest()}
        for _ in range(size)
    ]


async def client(url: str, key: str, path: str, size: int, until: float, counts: dict[str, int]) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        while time.monotonic() < until:
            # Generate outside the timed request; the bench measures the server, not the client.
            body = {"indicators": batch(size)}
            r = await http.post(path, json=body)
            if r.status_code != 200:
                counts["failed_requests"] += 1
                continue
            for name, value in r.json()["counts"].items():
                counts[name] += value
            counts["requests"] += 1


async def run(args: argparse.Namespace) -> None:
    async with EmbeddedBroker() as broker:
        workdir = Path(tempfile.mkdtemp(prefix="crisis-bench-"))
        store = KeyStore(workdir / "keys.json")
        _, hub = store.add("hub", Role.COORDINATOR)
        _, authority = store.add("bka", Role.AUTHORITY)
        port = free_port()
        env = {
            **os.environ,
            "CRISIS_KAFKA_BOOTSTRAP": broker.bootstrap,
            "CRISIS_KAFKA_TOPIC": f"bench-{uuid.uuid4().hex[:8]}",
            "CRISIS_KEYS_FILE": str(workdir / "keys.json"),
            "CRISIS_KAFKA_IDEMPOTENCE": "false",  # the embedded broker cannot run the idempotent producer
            "CRISIS_LOG_LEVEL": "warning",
        }
        if args.journal:
            env["CRISIS_KAFKA_JOURNAL_DIR"] = str(workdir / "log")
        # `crisis serve` keeps a local store unless told not to.
        env["CRISIS_STATE_STORE"] = "true" if args.store else "false"
        cmd = [sys.executable, "-m", "crisis.cli", "serve", "api", "--port", str(port)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)  # noqa: ASYNC220 -- spawn only, no wait
        try:
            url = f"http://127.0.0.1:{port}"
            await wait_ready(url, proc)
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {hub}"}) as http:
                r = await http.post(
                    "/v1/crises",
                    json={"title": "bench", "status": "activated", "level": 1, "criteria": ["viral_spread"]},
                )
                r.raise_for_status()
                path = f"/v1/crises/{r.json()['id']}/indicators"
            counts = dict.fromkeys(("created", "sighting", "rejected", "requests", "failed_requests"), 0)
            cpu_before = cpu_seconds(proc.pid), cpu_seconds(broker.pid), time.process_time()
            threads_before = thread_cpu_seconds(proc.pid)
            start = time.monotonic()
            until = start + args.seconds
            await asyncio.gather(
                *(client(url, authority, path, args.batch, until, counts) for _ in range(args.clients))
            )
            elapsed = time.monotonic() - start
            api_cpu = cpu_seconds(proc.pid) - cpu_before[0]
            broker_cpu = cpu_seconds(broker.pid) - cpu_before[1]
            client_cpu = time.process_time() - cpu_before[2]
            threads = thread_cpu_seconds(proc.pid)
            threads = {k: v - threads_before.get(k, 0.0) for k, v in threads.items()}
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    rate = counts["created"] / elapsed
    print(
        f"{counts['created']} indicators created in {elapsed:.1f} s by {args.clients} clients "
        f"(batches of {args.batch}, {counts['requests']} requests, {counts['failed_requests']} failed, "
        f"{counts['rejected']} rejected): {rate:,.0f} indicators/s accepted, acks=all"
        + (", journal fsynced" if args.journal else "")
        + (", local state store" if args.store else ", state in memory")
    )
    per_1000 = 1000 * api_cpu / max(counts["created"], 1)
    print(
        f"API process CPU {api_cpu:.1f} s ({per_1000 * 1000:.0f} ms per 1,000 indicators), "
        f"broker CPU {broker_cpu:.1f} s, clients' CPU {client_cpu:.1f} s, on {os.cpu_count()} CPUs"
    )
    print(
        "  of which "
        + ", ".join(f"{name} {1e6 * cpu / max(counts['created'], 1):.0f} ms" for name, cpu in threads.items())
        + f" per 1,000 ({100 * threads['event loop'] / elapsed:.0f}% of the event loop's thread busy)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--journal", action="store_true", help="keep the log on disk, as crisis up does")
    parser.add_argument("--store", action="store_true", help="keep the API's state in a local store")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
