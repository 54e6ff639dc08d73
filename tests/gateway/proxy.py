"""A TCP relay the test can cut: what it has not forwarded yet is lost, as on a real network drop."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class CuttableProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self._target = (host, target_port)
        self._host = host
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.cuts = 0

    async def __aenter__(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._relay, self._host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self, path: str = "/v1/stream") -> str:
        return f"ws://{self._host}:{self.port}{path}"

    def cut(self) -> bool:
        """Drop every relayed connection at once, without a close handshake; False if there was none."""
        if not self._writers:
            return False
        self.cuts += 1
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        return True

    async def _relay(self, down_reader: asyncio.StreamReader, down_writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            down_writer.transport.abort()
            return
        self._writers |= {down_writer, up_writer}
        await asyncio.gather(_pipe(down_reader, up_writer), _pipe(up_reader, down_writer))
        for writer in (down_writer, up_writer):
            self._writers.discard(writer)
            writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
