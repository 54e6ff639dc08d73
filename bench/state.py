"""Cold start, memory and ingest of API and gateway processes as the log grows: 100k / 300k / 1M indicators.

    python bench/state.py [--sizes 100000,300000,1000000] [--ingest-seconds 5] [--memory-baseline]
                          [--sealed files|kafka] [--restores 1]
    python bench/state.py --get-cost [--keys 200000]

Starts the embedded broker and writes one crisis and its `indicator.shared` events straight to the bus
with the project's codec (real events: the fold judges every one). For each size it starts
`crisis serve api` on an empty CRISIS_STATE_DIR (the fold builds the store from the whole log), stops it,
starts it again on that store (restore + tail: the cold start that matters) and measures an ingest burst
through the API; then a gateway restores from a copy of the store. It prints, per process: seconds to
/readyz, RSS at ready (VmRSS) and its peak (VmHWM), and for the API the ingest rate.
`--memory-baseline` also starts an API without a store (the whole log folded into memory) at each size.

`--sealed files|kafka` seals every event under its data key, as the API does (crisis.crypto.sealed): each
batch of 1,000 shares makes its keys first, in a directory of key files as `crisis up` keeps them (`files`,
the servers are given it as CRISIS_DATA_KEYS_DIR) or on the `<topic>.keys` topic (`kafka`). Without it the
log is plain and no process reads a key.

`--get-cost` measures `Keyring.get` alone: a hit (a key in memory) and a miss (a key read from the key file
beside the local store), over a directory of key files of `--keys` keys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
from support import stop

from crisis.broker import EmbeddedBroker, free_port
from crisis.bus.kafka import KafkaBus
from crisis.bus.kafka_keys import KafkaKeyring
from crisis.config import Settings
from crisis.crypto.keyring import FileKeyring, Keyring
from crisis.crypto.sealed import SealedBus
from crisis.domain import crisis as rules
from crisis.domain.crisis import CrisisCreate
from crisis.domain.enums import EventType, Mode, Role, Tlp
from crisis.domain.envelope import Envelope, source_for
from crisis.domain.events import CrisisChanged
from crisis.domain.principal import Principal
from crisis.keys import KeyStore

HUB = Principal(org="hub", role=Role.COORDINATOR, key_id="bench")
_fresh = itertools.count()


def opened(crisis_id: str) -> Envelope:
    req = CrisisCreate(title="bench", status="activated", level=1, criteria=["viral_spread"])  # type: ignore[arg-type]
    state, transition = rules.opened(crisis_id, req, HUB, datetime.now(UTC))
    data = CrisisChanged(crisis=state, transition=transition, expected_version=0)
    return Envelope(
        source=source_for("hub", "bench"),
        type=EventType.CRISIS_ACTIVATED,
        subject=crisis_id,
        tlp=Tlp.AMBER,
        mode=Mode.LIVE,
        role=Role.COORDINATOR,
        data=data.model_dump(mode="json"),
    )


def shares(crisis_id: str, start: int, count: int) -> Iterator[Envelope]:
    for n in range(start, start + count):
        value = hashlib.sha256(f"state-bench-{n}".encode()).hexdigest()
        env = Envelope(
            source=source_for("bka", "bench"),
            type=EventType.INDICATOR_SHARED,
            subject=crisis_id,
            tlp=Tlp.AMBER,
            mode=Mode.LIVE,
            role=Role.AUTHORITY,
            data={},
        )
        data = {
            "kind": "sha256",
            "value": value,
            "canonical": value,
            "indicator_id": env.id,
            "shared_by": "bka",
        }
        yield env.model_copy(update={"data": data})


def memory(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM of a process in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


class Server:
    """One `crisis serve api|gateway` process; `ready` is the seconds from spawn to /readyz answering 200."""

    def __init__(self, what: str, env: dict[str, str], state_dir: Path | None) -> None:
        self.port = free_port()
        env = {**env}
        if state_dir is not None:
            env["CRISIS_STATE_DIR"] = str(state_dir)
        else:
            env["CRISIS_STATE_STORE"] = "false"  # `crisis serve` keeps a local store unless told not to
        env["CRISIS_API_PORT" if what == "api" else "CRISIS_GATEWAY_PORT"] = str(self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.started = time.monotonic()
        cmd = [sys.executable, "-m", "crisis.cli", "serve", what, "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        self.ready = 0.0

    async def wait_ready(self, timeout: float = 1800) -> None:
        async with httpx.AsyncClient(base_url=self.url) as http:
            while time.monotonic() - self.started < timeout:
                if self.proc.poll() is not None:
                    raise SystemExit(f"the server exited with {self.proc.returncode}")
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        self.ready = time.monotonic() - self.started
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise SystemExit("the server did not become ready")

    def stop(self) -> None:
        stop(self.proc, grace=60)


async def client(url: str, key: str, path: str, until: float, counts: dict[str, int]) -> None:
    """Post batches of 1,000 fresh sha256 indicators until `until`, counting those created."""
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as http:
        while time.monotonic() < until:
            n = next(_fresh)
            items = [
                {"kind": "sha256", "value": hashlib.sha256(f"ingest-{n}-{i}".encode()).hexdigest()}
                for i in range(1000)
            ]
            r = await http.post(path, json={"indicators": items})
            if r.status_code == 200:
                counts["created"] += r.json()["counts"]["created"]


async def ingest(url: str, key: str, crisis_id: str, seconds: float) -> tuple[int, float]:
    """Indicators/s created by four clients posting batches of 1,000 (they stay in the log: the next size
    starts from the indicators written plus these)."""
    counts = {"created": 0}
    start = time.monotonic()
    path = f"/v1/crises/{crisis_id}/indicators"
    await asyncio.gather(*(client(url, key, path, start + seconds, counts) for _ in range(4)))
    return counts["created"], counts["created"] / (time.monotonic() - start)


async def measure(what: str, env: dict[str, str], state: Path | None, label: str, n: int) -> Server:
    server = Server(what, env, state)
    await server.wait_ready()
    rss, peak = memory(server.proc.pid)
    print(
        f"{n:>9,} {what:<7} {label:<22} ready {server.ready:7.1f} s  RSS {rss:6.0f} MiB  peak {peak:6.0f} MiB"
    )
    return server


async def run(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="crisis-state-bench-"))
    try:
        async with EmbeddedBroker() as broker:
            keys = KeyStore(workdir / "keys.json")
            _, authority = keys.add("bka", Role.AUTHORITY)
            topic = f"state-bench-{uuid.uuid4().hex[:8]}"
            settings = Settings(kafka_bootstrap=broker.bootstrap, kafka_topic=topic, kafka_idempotence=False)
            env = {
                **os.environ,
                "CRISIS_KAFKA_BOOTSTRAP": broker.bootstrap,
                "CRISIS_KAFKA_TOPIC": topic,
                "CRISIS_KEYS_FILE": str(workdir / "keys.json"),
                "CRISIS_KAFKA_IDEMPOTENCE": "false",
                "CRISIS_LOG_LEVEL": "warning",
            }
            if args.sealed == "files":
                env["CRISIS_DATA_KEYS_DIR"] = str(workdir / "data-keys")
            crisis_id = str(uuid.uuid4())
            written = 0
            async with KafkaBus(settings) as bus, keyring(args.sealed, settings, workdir) as keys_made:
                publish = Publisher(bus, keys_made)
                await publish([opened(crisis_id)])
                for n in sizes:
                    began = time.monotonic()
                    while written < n:
                        step = min(1000, n - written)  # the API's batch: one batch of keys each
                        await publish(list(shares(crisis_id, written, step)))
                        written += step
                    wrote = time.monotonic() - began
                    print(
                        f"{written:>9,} indicators in the log ({wrote:.0f} s to write the rest)", flush=True
                    )
                    if args.memory_baseline:
                        (await measure("api", env, None, "no store (memory)", n)).stop()
                    state = workdir / f"api-{n}"
                    (await measure("api", env, state, "empty store (build)", n)).stop()
                    size = sum(f.stat().st_size for f in state.iterdir()) / 2**20
                    if args.sealed:
                        print(f"{n:>9,} api     state files {sorted(f.name for f in state.iterdir())}")
                    for again in range(1, args.restores):
                        (await measure("api", env, state, f"restore #{again} ({size:.0f} MiB)", n)).stop()
                    api = await measure("api", env, state, f"restore ({size:.0f} MiB)", n)
                    try:
                        created, rate = await ingest(api.url, authority, crisis_id, args.ingest_seconds)
                        written += created
                        rss, peak = memory(api.proc.pid)
                        print(
                            f"{n:>9,} api     ingest {rate:9,.0f} indicators/s, "
                            f"then RSS {rss:.0f} MiB, peak {peak:.0f} MiB"
                        )
                    finally:
                        api.stop()
                    gateway_state = workdir / f"gateway-{n}"
                    shutil.copytree(state, gateway_state, ignore=shutil.ignore_patterns("state.lock"))
                    (await measure("gateway", env, gateway_state, "restore (copy)", n)).stop()
                    shutil.rmtree(gateway_state)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class Publisher:
    """Writes events as the API does: sealed under their keys when there is a keyring, else plain."""

    def __init__(self, bus: KafkaBus, keys: Keyring | None) -> None:
        self.bus = bus
        self.sealed = None if keys is None else SealedBus(bus, keys)

    async def __call__(self, envelopes: list[Envelope]) -> None:
        if self.sealed is not None:
            envelopes = await self.sealed.seal(envelopes)
            self.sealed._sent.clear()  # kept for a reader of this process: there is none
        await self.bus.publish(envelopes)


@contextlib.asynccontextmanager
async def keyring(sealed: str | None, settings: Settings, workdir: Path) -> AsyncIterator[Keyring | None]:
    if sealed is None:
        yield None
    elif sealed == "files":
        yield FileKeyring(workdir / "data-keys")
    else:
        async with KafkaKeyring(settings) as ring:
            yield ring


async def get_cost(count: int) -> None:
    """ns per `get`: a key in memory, a key read from the key file."""
    from crisis.crypto.keycache import KeyFile  # here: the rest of the bench also runs on older versions

    workdir = Path(tempfile.mkdtemp(prefix="crisis-keys-bench-"))
    try:
        directory = workdir / "data-keys"
        ring = FileKeyring(directory, KeyFile(workdir / "state", f"files:{directory}"))
        kids = [f"{uuid.uuid4()}/{n}" for n in range(count)]
        for at in range(0, count, 1000):
            await ring.create(kids[at : at + 1000])
        cached = list(ring.keys)
        began = time.perf_counter_ns()
        for kid in cached:
            ring.get(kid)
        hit = (time.perf_counter_ns() - began) / len(cached)
        # Read in order of making with a cache smaller than the sweep: every look misses and is read.
        cold = FileKeyring(directory, KeyFile(workdir / "state", f"files:{directory}"), cache=1000)
        began = time.perf_counter_ns()
        for kid in kids:
            cold.get(kid)
        miss = (time.perf_counter_ns() - began) / count
        whole = FileKeyring(directory)  # no key file: every key in memory, read at start
        began = time.perf_counter_ns()
        for kid in cached:
            whole.get(kid)
        memory = (time.perf_counter_ns() - began) / len(cached)
        plain = dict.fromkeys(cached, b"k" * 32)
        began = time.perf_counter_ns()
        for kid in cached:
            plain.get(kid)
        bare = (time.perf_counter_ns() - began) / len(cached)
        print(
            f"get over {count:,} keys: hit {hit:,.0f} ns (every key in memory: {memory:,.0f} ns; a plain dict"
            f" lookup in the same loop: {bare:,.0f} ns), miss read from the key file {miss:,.0f} ns"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--ingest-seconds", type=float, default=5.0)
    parser.add_argument("--memory-baseline", action="store_true")
    parser.add_argument("--sealed", choices=["files", "kafka"], default=None)
    parser.add_argument("--restores", type=int, default=1, help="API restarts measured on each store")
    parser.add_argument("--get-cost", action="store_true")
    parser.add_argument("--keys", type=int, default=200_000)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # figures as they come
    args = parser.parse_args()
    asyncio.run(get_cost(args.keys) if args.get_cost else run(args))


if __name__ == "__main__":
    main()
