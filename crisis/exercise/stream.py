"""A subscription to the gateway's stream with plain `websockets`: CloudEvents out, control messages used."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import websockets
from websockets.asyncio.client import ClientConnection

Event = dict[str, Any]


class StreamError(Exception):
    """The stream refused us or cannot be reached."""


class Subscription:
    """Events after the `subscribed` cut, resumed from the last cursor if the connection drops."""

    def __init__(self, url: str, key: str, *, types: Sequence[str], mode: str = "exercise") -> None:
        self.url = url
        self._key = key
        self._params = {"mode": mode, **({"type": ",".join(types)} if types else {})}
        self._cursor: str | None = None
        self._ws: ClientConnection | None = None

    def _address(self) -> str:
        params = dict(self._params)
        if self._cursor:
            params["cursor"] = self._cursor
        return f"{self.url}?{urlencode(params)}"

    async def connect(self) -> None:
        """Connect and wait for the gateway's `subscribed`: from then on nothing published is missed."""
        try:
            self._ws = await websockets.connect(
                self._address(),
                additional_headers={"Authorization": f"Bearer {self._key}"},
                subprotocols=["cloudevents.json"],  # type: ignore[list-item]
                open_timeout=10,
                compression=None,
            )
        except (OSError, websockets.InvalidHandshake, TimeoutError) as exc:
            raise StreamError(f"cannot subscribe at {self.url}: {exc}") from exc
        async with asyncio.timeout(10):
            while True:
                message = json.loads(await self._ws.recv())
                if message.get("type") == "subscribed":
                    self._cursor = self._cursor or message.get("cursor")
                    return

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def events(self) -> AsyncIterator[Event]:
        """CloudEvents only (`specversion` set); reconnects with the cursor a few times before giving up."""
        failures = 0
        while True:
            assert self._ws is not None
            try:
                async for raw in self._ws:
                    message = json.loads(raw)
                    if "cursor" in message and "specversion" in message:
                        self._cursor = message["cursor"]
                        failures = 0
                        yield message
            except websockets.ConnectionClosedError:
                pass
            if self._ws.close_code == 1000:
                return
            failures += 1
            if failures > 5:
                raise StreamError(f"the stream at {self.url} keeps closing ({self._ws.close_reason})")
            await asyncio.sleep(0.2 * failures)
            await self.connect()


@asynccontextmanager
async def subscribed(
    url: str, key: str, *, types: Sequence[str], mode: str = "exercise"
) -> AsyncIterator[Subscription]:
    sub = Subscription(url, key, types=types, mode=mode)
    await sub.connect()
    try:
        yield sub
    finally:
        await sub.close()
