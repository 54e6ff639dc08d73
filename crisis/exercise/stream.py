"""The runner's subscriptions: `crisis.client`'s stream (resume, dedupe, backoff), CloudEvents as dicts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

from crisis.client.stream import Stream, StreamRefused, StreamUnavailable

Event = dict[str, Any]
CONNECT_ATTEMPTS: Final = 5
SUBSCRIBE_TIMEOUT_S: Final = 15.0


class StreamError(Exception):
    """The stream refused us or cannot be reached."""


class Subscription:
    """Events after the `subscribed` cut, resumed from the last cursor if the connection drops."""

    def __init__(self, url: str, key: str, *, types: Sequence[str], mode: str = "exercise") -> None:
        self.url = url
        self._stream = Stream(
            url, key, types=list(types) or None, mode=mode, connect_attempts=CONNECT_ATTEMPTS
        )

    async def connect(self) -> None:
        """Connect and wait for the gateway's `subscribed`: from then on nothing published is missed."""
        try:
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                await self._stream.connect()
        except (StreamRefused, StreamUnavailable) as exc:
            raise StreamError(f"cannot subscribe at {self.url}: {exc}") from None
        except TimeoutError:
            raise StreamError(
                f"cannot subscribe at {self.url}: no answer in {SUBSCRIBE_TIMEOUT_S:g} s"
            ) from None

    async def close(self) -> None:
        await self._stream.close()

    async def events(self) -> AsyncIterator[Event]:
        """CloudEvents only; a dropped connection resumes from the last cursor, nothing lost or repeated."""
        try:
            async for message in self._stream:
                if message.is_event:
                    yield message.body
        except StreamRefused as exc:
            raise StreamError(f"the stream at {self.url} refused us: {exc}") from None


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
