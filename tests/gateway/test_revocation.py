"""A key revoked (from another process) or expired while streaming ends its streams within a second."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import timedelta

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from crisis.domain.enums import Role
from crisis.domain.envelope import utcnow
from tests.conftest import Stack
from tests.gateway.conftest import client, events, indicators, open_crisis, publish, recv

pytestmark = pytest.mark.kafka


async def close_of(ws: ClientConnection, within: float) -> tuple[int, str]:
    """Reads (events may still arrive) until the gateway closes; fails if that takes longer than `within`."""
    async with asyncio.timeout(within):
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass
    rcvd = ws.protocol.close_rcvd
    assert rcvd is not None, "the gateway cut the connection without a close frame"
    return rcvd.code, rcvd.reason


async def test_crisis_keys_revoke_in_another_process_closes_the_stream_within_a_second(
    full_stack: Stack,
) -> None:
    s = full_stack
    crisis = await open_crisis(s)
    record, key = s.keys.add("vidshare", Role.PROVIDER)
    _, other = s.keys.add("vidshare", Role.PROVIDER)
    async with client(s.ws_url, key, type="indicator.shared") as ws, client(s.ws_url, other) as bystander:
        assert (await recv(ws))["type"] == "subscribed"
        await recv(bystander)
        await publish(s.bus, indicators([crisis], 3))
        assert len(await events(ws, 3)) == 3
        revoke = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crisis.cli", "keys", "revoke", record.id, "--keys-file", str(s.keys.path)
        )
        assert await revoke.wait() == 0
        code, reason = await close_of(ws, within=1.0)
        # Another key of the same organisation streams on.
        await publish(s.bus, more := indicators([crisis], 2))
        assert [e["id"] for e in await events(bystander, 5)][3:] == [e.id for e in more]
    assert code == 1008
    assert "revoked" in reason


async def test_a_key_expiring_while_connected_closes_the_stream_within_a_second(full_stack: Stack) -> None:
    s = full_stack
    expires = utcnow() + timedelta(seconds=1.5)
    _, key = s.keys.add("vidshare", Role.PROVIDER, expires_at=expires)
    async with client(s.ws_url, key) as ws:
        assert (await recv(ws))["type"] == "subscribed"
        left = (expires - utcnow()).total_seconds()
        code, reason = await close_of(ws, within=left + 1.0)
    assert code == 1008
    assert "expired" in reason


async def test_a_browser_whose_key_is_revoked_is_closed_too(full_stack: Stack) -> None:
    s = full_stack
    record, key = s.keys.add("vidshare", Role.PROVIDER)
    async with client(s.ws_url) as ws:
        await ws.send(f'{{"type": "auth", "token": "{key}"}}')
        assert (await recv(ws))["type"] == "subscribed"
        s.keys.revoke(record.id)
        code, _ = await close_of(ws, within=1.0)
    assert code == 1008
