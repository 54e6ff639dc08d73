"""Indicators/s accepted through POST /v1/crises/{id}/indicators by one API process, acks=all, loopback.

    python bench/ingest.py [--seconds 10] [--clients 4] [--batch 1000] [--journal] [--store] [--followers 0]
                           [--gateways 0]

Starts the embedded broker and one `crisis serve api` subprocess, opens a crisis, then several clients post
batches of fresh sha256 indicators for a fixed time. Counts only items the API answered `created`.
`--journal` keeps the log on disk as `crisis up` does (each acknowledged batch fsynced before the answer);
`--store` gives the API process a local state store (CRISIS_STATE_DIR), as `crisis up` and `crisis serve` do.
`--followers N` starts N more API processes that take no request, as the other replicas behind a load
balancer: every API process folds every event, so what one costs while others take the writes bounds how far
ingest grows with replicas. Each is asked, with `Crisis-After`, to answer once it has folded the last write;
then their CPU per 1,000 indicators is printed. `--gateways N` does the same for gateway processes with no
subscriber (each also reads, opens and folds every event): their CPU is read once it stops rising.
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
from support import cpu_seconds, stop, thread_cpu_seconds, wait_ready

from crisis.broker import EmbeddedBroker, free_port
from crisis.domain.enums import Role
from crisis.keys import KeyStore

_counter = itertools.count()


def batch(size: int) -> list[dict[str, str]]:
    return [
        {"kind": "sha256", "value": hashlib.sha256(str(next(_counter)).encode()).hexdigest()}
        for _ in range(size)
    ]


async def client(
    url: str, key: str, path: str, size: int, until: float, counts: dict[str, int], positions: list[str]
) -> None:
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
            positions.append(r.headers["Crisis-Position"])


async def folded(url: str, key: str, path: str, positions: list[str]) -> None:
    """Until the API process at `url` has folded every write (each client's last position: any order);
    `path` is the crisis's, a read that costs nothing per indicator."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
        for position in positions:
            r = await http.get(path, headers={"Crisis-After": position})
            r.raise_for_status()


async def settled(pid: int) -> None:
    """Until a process's CPU falls to its idle rate (under a fifth of a CPU for a second, where folding
    takes all of one; an idle gateway still polls the broker): it has read what there was."""
    before = cpu_seconds(pid)
    while True:
        await asyncio.sleep(1.0)
        now = cpu_seconds(pid)
        if now - before < 0.2:
            return
        before = now


Spent = tuple[dict[str, float], float]


def spent(
    procs: list[tuple[str, subprocess.Popen[bytes]]], before: list[dict[str, float]], idle: dict[int, float]
) -> list[Spent]:
    """Each process's CPU by thread since `before`, and its idle rate (CPU seconds per second)."""
    return [
        ({k: v - b.get(k, 0.0) for k, v in thread_cpu_seconds(p.pid).items()}, idle[p.pid])
        for (_, p), b in zip(procs, before, strict=True)
    ]


def per_1000_line(label: str, cpu: dict[str, float], idle_cpu: float, created: int) -> str:
    return (
        f"{label}: "
        + ", ".join(f"{name} {1e6 * c / created:.0f} ms" for name, c in cpu.items())
        + f" per 1,000 (idle before the writes: {100 * idle_cpu:.0f}% of a CPU)"
    )


def spawn(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)


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
        cmd = [sys.executable, "-m", "crisis.cli", "serve", "api", "--port"]
        proc = spawn([*cmd, str(port)], env)
        followers: list[tuple[str, subprocess.Popen[bytes]]] = []
        gateways: list[tuple[str, subprocess.Popen[bytes]]] = []
        try:
            url = f"http://127.0.0.1:{port}"
            for n in range(args.followers):
                # Its own store and key file, as another replica's; it waits as long as it needs to fold.
                own = {
                    **env,
                    "CRISIS_STATE_DIR": str(workdir / f"follower-{n}"),
                    "CRISIS_READ_AFTER_TIMEOUT_S": "60",
                }
                follower_port = free_port()
                followers.append(
                    (f"http://127.0.0.1:{follower_port}", spawn([*cmd, str(follower_port)], own))
                )
            for n in range(args.gateways):
                own = {**env, "CRISIS_STATE_DIR": str(workdir / f"gateway-{n}")}
                gateway_port = free_port()
                gateway_cmd = [
                    sys.executable,
                    "-m",
                    "crisis.cli",
                    "serve",
                    "gateway",
                    "--port",
                    str(gateway_port),
                ]
                gateways.append((f"http://127.0.0.1:{gateway_port}", spawn(gateway_cmd, own)))
            for ready_url, ready_proc in [(url, proc), *followers, *gateways]:
                await wait_ready(ready_url, ready_proc)
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {hub}"}) as http:
                r = await http.post(
                    "/v1/crises",
                    json={"title": "bench", "status": "activated", "level": 1, "criteria": ["viral_spread"]},
                )
                r.raise_for_status()
                crisis_path = f"/v1/crises/{r.json()['id']}"
                path = f"{crisis_path}/indicators"
            counts = dict.fromkeys(("created", "sighting", "rejected", "requests", "failed_requests"), 0)
            if followers:  # the crisis itself folded by every follower before the clock starts
                await asyncio.gather(
                    *(folded(u, hub, crisis_path, [r.headers["Crisis-Position"]]) for u, _ in followers)
                )
            # What the others spend idle (polling the broker), once done with starting: their figures below
            # include it, at most.
            others = [p for _, p in [*followers, *gateways]]
            await asyncio.sleep(3.0 if others else 0.0)
            idle_before = [cpu_seconds(p.pid) for p in others]
            await asyncio.sleep(3.0 if others else 0.0)
            idle = {p.pid: (cpu_seconds(p.pid) - b) / 3.0 for p, b in zip(others, idle_before, strict=True)}
            cpu_before = cpu_seconds(proc.pid), cpu_seconds(broker.pid), time.process_time()
            threads_before = thread_cpu_seconds(proc.pid)
            followers_before = [thread_cpu_seconds(p.pid) for _, p in followers]
            gateways_before = [thread_cpu_seconds(p.pid) for _, p in gateways]
            start = time.monotonic()
            until = start + args.seconds
            last: list[list[str]] = [[] for _ in range(args.clients)]
            await asyncio.gather(
                *(
                    client(url, authority, path, args.batch, until, counts, last[n])
                    for n in range(args.clients)
                )
            )
            elapsed = time.monotonic() - start
            api_cpu = cpu_seconds(proc.pid) - cpu_before[0]
            broker_cpu = cpu_seconds(broker.pid) - cpu_before[1]
            client_cpu = time.process_time() - cpu_before[2]
            threads = thread_cpu_seconds(proc.pid)
            threads = {k: v - threads_before.get(k, 0.0) for k, v in threads.items()}
            ends = [positions[-1] for positions in last if positions]
            await asyncio.gather(*(folded(u, authority, crisis_path, ends) for u, _ in followers))
            caught_up = time.monotonic() - start
            followed = spent(followers, followers_before, idle)
            await asyncio.gather(*(settled(p.pid) for _, p in gateways))
            gateways_settled = time.monotonic() - start
            fanned = spent(gateways, gateways_before, idle)
        finally:
            for _, other in [*followers, *gateways]:
                stop(other)
            stop(proc)
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
    created = max(counts["created"], 1)
    for n, (cpu, idle_cpu) in enumerate(followed):
        label = f"follower {n + 1} (no requests, folded every write {caught_up:.1f} s after the start)"
        print(per_1000_line(label, cpu, idle_cpu, created))
    for n, (cpu, idle_cpu) in enumerate(fanned):
        label = f"gateway {n + 1} (no subscribers, CPU settled {gateways_settled:.1f} s after the start)"
        print(per_1000_line(label, cpu, idle_cpu, created))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--journal", action="store_true", help="keep the log on disk, as crisis up does")
    parser.add_argument("--store", action="store_true", help="keep the API's state in a local store")
    parser.add_argument("--followers", type=int, default=0, help="API processes that only fold the log")
    parser.add_argument("--gateways", type=int, default=0, help="gateway processes with no subscriber")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
