"""A client that stops reading is closed with its cursor; a reading client beside it gets everything."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import statistics
import struct
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from crisis.client import Message, Stream
from crisis.domain.envelope import Envelope
from crisis.gateway import protocol
from tests.gateway.conftest import OpenStack, gateway_port, indicators, open_crisis
from tests.gateway.test_resume import check_exact

pytestmark = pytest.mark.kafka


class StalledClient:
    """A raw WebSocket client with a tiny receive buffer that reads nothing after the handshake."""

    def __init__(self, port: int, key: str) -> None:
        self._port, self._key = port, key
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setblocking(False)
        self.data = b""

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_connect(self.sock, ("127.0.0.1", self._port))
        nonce = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /v1/stream?type=indicator.shared HTTP/1.1\r\nHost: 127.0.0.1:{self._port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {self._key}\r\n\r\n"
        )
        await loop.sock_sendall(self.sock, request.encode())
        while b"\r\n\r\n" not in self.data:
            self.data += await loop.sock_recv(self.sock, 4096)
        head, _, self.data = self.data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")

    async def drain(self) -> tuple[list[dict[str, Any]], int, str]:
        """Read everything now: the messages, then the close code and reason."""
        loop = asyncio.get_running_loop()
        messages: list[dict[str, Any]] = []
        async with asyncio.timeout(10):
            while True:
                frame = self._frame()
                if frame is None:
                    chunk = await loop.sock_recv(self.sock, 1 << 20)
                    assert chunk, "connection ended without a close frame"
                    self.data += chunk
                    continue
                opcode, payload = frame
                if opcode == 0x1:
                    messages.append(json.loads(payload))
                elif opcode == 0x8:
                    (code,) = struct.unpack("!H", payload[:2])
                    return messages, code, payload[2:].decode()

    def _frame(self) -> tuple[int, bytes] | None:
        data = self.data
        if len(data) < 2:
            return None
        size, pos = data[1] & 0x7F, 2
        if size == 126:
            if len(data) < 4:
                return None
            (size,) = struct.unpack_from("!H", data, 2)
            pos = 4
        elif size == 127:
            if len(data) < 10:
                return None
            (size,) = struct.unpack_from("!Q", data, 2)
            pos = 10
        if len(data) < pos + size:
            return None
        self.data = data[pos + size :]
        return data[0] & 0x0F, data[pos : pos + size]


def latencies(got: list[Message]) -> list[float]:
    now = datetime.now(UTC)
    return [(now - datetime.fromisoformat(m.body["time"])).total_seconds() * 1000 for m in got]


async def paced(
    bus: Any, crises: list[Envelope], count: int, per_tick: int = 20, tick: float = 0.01
) -> list[Envelope]:
    """Publish `count` events stamped just before they go, `per_tick` every `tick` seconds."""
    sent: list[Envelope] = []
    for n in range(0, count, per_tick):
        fresh = indicators(crises, per_tick, start=n)
        batch = [e.model_copy(update={"time": datetime.now(UTC)}) for e in fresh]
        sent += batch
        await bus.publish(batch)
        await asyncio.sleep(tick)
    return sent


async def receive_timed(stream: Stream, count: int) -> tuple[list[Message], list[float]]:
    got: list[Message] = []
    lat: list[float] = []
    async with asyncio.timeout(30):
        async for message in stream:
            got.append(message)
            lat.append((time.time() - datetime.fromisoformat(message.body["time"]).timestamp()) * 1000)
            if len(got) == count:
                return got, lat
    raise AssertionError("stream ended")


def figures(lat: list[float]) -> str:
    q = statistics.quantiles(lat, n=100)
    return f"p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms over {len(lat)} events"


async def test_a_stalled_client_is_closed_with_its_cursor_and_never_slows_others(
    open_stack: OpenStack,
) -> None:
    async with open_stack(gateway_buffer_bytes=65536) as s:
        crises = [await open_crisis(s) for _ in range(2)]
        key = s.add_key("vidshare", "provider")
        port = gateway_port(s)
        async with Stream(s.ws_url, key, types=["indicator.shared"], dedupe=0) as reader:
            await reader.connect()
            # The reading client alone.
            alone_task = asyncio.create_task(receive_timed(reader, 1_000))
            await paced(s.bus, crises, 1_000)
            _, alone = await alone_task
            # The same load beside a client that stopped reading.
            stalled = StalledClient(port, key)
            await stalled.open()
            beside_task = asyncio.create_task(receive_timed(reader, 3_000))
            sent = await paced(s.bus, crises, 3_000)
            got, beside = await beside_task
            check_exact(got, sent)
            messages, code, reason = await stalled.drain()
            stalled.sock.close()
        print(f"\nreading client alone:              {figures(alone)}")
        print(f"reading client beside a stalled one: {figures(beside)}")
        events = [m for m in messages if "specversion" in m]
        assert code == protocol.SLOW_CONSUMER
        assert events and events[-1]["id"] in {e.id for e in sent}
        cursor = protocol.reason_cursor(reason)
        assert cursor == events[-1]["cursor"]
        assert messages[-1] == {
            "type": "closing",
            "code": protocol.SLOW_CONSUMER,
            "reason": "slow consumer",
            "cursor": cursor,
        }
        # Resuming from that cursor, the stalled client gets exactly what it missed.
        seen = {m["id"] for m in events}
        rest = [e for e in sent if e.id not in seen]
        async with Stream(s.ws_url, key, types=["indicator.shared"], cursor=cursor, dedupe=0) as again:
            resumed = [m async for m in _take(again, len(rest))]
        check_exact(resumed, rest)


async def _take(stream: Stream, count: int) -> Any:
    async with asyncio.timeout(30):
        n = 0
        async for message in stream:
            yield message
            n += 1
            if n == count:
                return
