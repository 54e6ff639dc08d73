"""Gateway fixtures: stacks with the test's settings, clients on real sockets, publishing helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.asyncio.client import ClientConnection, connect

from crisis.bus.base import Bus
from crisis.domain.envelope import Envelope
from crisis.runtime import stack
from tests.conftest import Stack
from tests.gateway.events import crisis_opened, indicator_shared

OpenStack = Callable[..., AbstractAsyncContextManager[Stack]]


@pytest.fixture
def open_stack(make_settings: Any) -> OpenStack:
    """`async with open_stack(gateway_buffer_bytes=...) as s:` a bus, ledger and gateway (API on request)."""

    @asynccontextmanager
    async def open_(*, api: bool = False, **overrides: Any) -> AsyncIterator[Stack]:
        async with stack(make_settings(**overrides), api=api) as running:
            running.__class__ = Stack
            yield running  # type: ignore[misc]

    return open_


def url(base: str, **params: str) -> str:
    return f"{base}?{urlencode(params)}" if params else base


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@asynccontextmanager
async def client(base: str, key: str | None = None, **params: str) -> AsyncIterator[ClientConnection]:
    headers = bearer(key) if key else {}
    async with connect(
        url(base, **params),
        additional_headers=headers,
        subprotocols=["cloudevents.json"],  # type: ignore[list-item]
        compression=None,
        max_size=None,
    ) as ws:
        yield ws


async def recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        message: dict[str, Any] = json.loads(await ws.recv())
        return message


async def events(ws: ClientConnection, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The next `count` CloudEvents, skipping control messages."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            message = json.loads(await ws.recv())
            if "specversion" in message:
                out.append(message)
    return out


async def open_crisis(s: Stack, **kw: Any) -> Envelope:
    crisis = crisis_opened(**kw)
    [outcome] = await s.ledger.write([crisis])
    assert outcome.accepted, outcome
    return crisis


async def publish(bus: Bus, envelopes: Sequence[Envelope], batch: int = 500, pause: float = 0.0) -> None:
    for i in range(0, len(envelopes), batch):
        await bus.publish(envelopes[i : i + batch])
        if pause:
            await asyncio.sleep(pause)


def indicators(crises: Sequence[Envelope], count: int, start: int = 0) -> list[Envelope]:
    """`count` indicators spread over `crises`, each with its sequence number in `data.context.labels`."""
    out = []
    for n in range(start, start + count):
        env = indicator_shared(crises[n % len(crises)], seq=n)
        data = dict(env.data, context={"labels": [f"n{n}"]})
        out.append(env.model_copy(update={"data": data}))
    return out


def seq(message: dict[str, Any]) -> int:
    return int(message["data"]["context"]["labels"][0][1:])


def gateway_port(s: Stack) -> int:
    return int(s.ws_url.rsplit(":", 1)[1].split("/")[0])
