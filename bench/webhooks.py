"""Webhook deliveries/s and latency through one deliverer to one local receiver, embedded broker, loopback.

    python bench/webhooks.py [--events 5000] [--batch 500]

One process runs the embedded broker's client side, the API and the deliverer, plus a receiver (uvicorn)
that answers 204 and checks nothing; the broker is its own process. An endpoint subscribes to
`indicator.shared`; `--events` indicators are shared in batches as fast as the API takes them. Prints the
deliveries/s from the first share to the last receipt, and the latency from each event's time (stamped by
the API) to its receipt: p50, p99, max. Every delivery is one signed POST and two SQLite commits.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from crisis.broker import EmbeddedBroker
from crisis.config import Settings
from crisis.domain.enums import Role
from crisis.runtime import stack


class Receiver:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.done = asyncio.Event()
        self.expected = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        sent = datetime.fromisoformat(json.loads(body)["time"]).timestamp()
        self.latencies.append(time.time() - sent)
        if len(self.latencies) >= self.expected:
            self.done.set()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def main(events: int, size: int) -> None:
    receiver = Receiver()
    receiver.expected = events
    server = uvicorn.Server(
        uvicorn.Config(receiver, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    )
    serving = asyncio.create_task(server._serve())
    while not server.started:  # noqa: ASYNC110 -- uvicorn sets a flag, it offers no event to wait on
        await asyncio.sleep(0.01)
    hook_url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/"
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedBroker() as broker:
            settings = Settings(
                kafka_bootstrap=broker.bootstrap,
                kafka_idempotence=False,
                kafka_topic=f"bench-{uuid.uuid4().hex[:8]}",
                keys_file=Path(tmp) / "keys.json",
                orgs_file=Path(tmp) / "orgs.json",
                webhooks_file=Path(tmp) / "webhooks.db",
                webhook_deliverer=True,
                webhook_allow_private=True,
                api_port=0,
                log_level="warning",
            )
            async with stack(settings, gateway=False) as running:
                _, hub = running.keys.add("hub", Role.COORDINATOR)
                _, provider = running.keys.add("vidshare", Role.PROVIDER)
                async with httpx.AsyncClient(base_url=running.api_url, timeout=60) as http:
                    auth = {"Authorization": f"Bearer {provider}"}
                    body = {"url": hook_url, "types": ["indicator.shared"]}
                    (await http.post("/v1/webhooks", json=body, headers=auth)).raise_for_status()
                    declare = {
                        "title": "bench",
                        "status": "activated",
                        "level": 1,
                        "criteria": ["ongoing_violent_event"],
                    }
                    r = await http.post(
                        "/v1/crises", json=declare, headers={"Authorization": f"Bearer {hub}"}
                    )
                    crisis = r.raise_for_status().json()["id"]
                    start = time.perf_counter()
                    for first in range(0, events, size):
                        items = [
                            {"kind": "sha256", "value": hashlib.sha256(f"{n}".encode()).hexdigest()}
                            for n in range(first, min(events, first + size))
                        ]
                        path = f"/v1/crises/{crisis}/indicators"
                        (await http.post(path, json={"indicators": items}, headers=auth)).raise_for_status()
                    shared = time.perf_counter() - start
                    await asyncio.wait_for(receiver.done.wait(), timeout=600)
                    took = time.perf_counter() - start
    server.should_exit = True
    await serving
    ms = sorted(x * 1000 for x in receiver.latencies)
    print(f"events {events} in batches of {size}: shared in {shared:.2f} s, all delivered in {took:.2f} s")
    print(f"deliveries/s {events / took:,.0f}")
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"latency ms p50 {statistics.median(ms):.1f} p99 {p99:.1f} max {ms[-1]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.batch))
