"""Authentication and subscription checks: every refusal happens before any event flows."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from crisis.domain.enums import Mode
from crisis.domain.envelope import utcnow
from tests.conftest import Stack, every_adapter
from tests.gateway.conftest import OpenStack, bearer, client, open_crisis, recv, url

pytestmark = every_adapter

LOCAL = Origin("http://localhost:8000")


async def refused_status(address: str, headers: dict[str, str] | None = None, **kw: object) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with connect(address, additional_headers=headers or {}, **kw):  # type: ignore[arg-type]
            pass
    return info.value.response.status_code


async def closed_before_any_event(ws: ClientConnection, first: str | None = None) -> tuple[int | None, str]:
    """Reads until the close; fails if anything but a close arrives."""
    if first is not None:
        await ws.send(first)
    try:
        async with asyncio.timeout(5):
            message = await ws.recv()
    except ConnectionClosed as closed:
        rcvd = closed.rcvd
        return (rcvd.code, rcvd.reason) if rcvd else (None, "")
    pytest.fail(f"received {message!r} before being refused")


async def test_a_bot_with_a_valid_key_is_subscribed_with_the_subprotocol(full_stack: Stack) -> None:
    key = full_stack.add_key("vidshare", "provider")
    async with client(full_stack.ws_url, key) as ws:
        assert ws.subprotocol == "cloudevents.json"
        hello = await recv(ws)
        assert hello["type"] == "subscribed" and hello["org"] == "vidshare"
        assert hello["filter"] == {"crises": None, "types": None, "kinds": None, "mode": "live"}


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer cb_unknown_secret", "Basic abc"])
async def test_bad_tokens_get_http_401_or_400(full_stack: Stack, header: str) -> None:
    status = await refused_status(full_stack.ws_url, {"Authorization": header})
    assert status == (400 if header.startswith("Basic") else 401)


async def test_expired_and_revoked_keys_get_401(full_stack: Stack) -> None:
    _, expired = full_stack.keys.add("vidshare", "provider", expires_at=utcnow() - timedelta(seconds=1))  # type: ignore[arg-type]
    record, revoked = full_stack.keys.add("vidshare", "provider")  # type: ignore[arg-type]
    full_stack.keys.revoke(record.id)
    assert await refused_status(full_stack.ws_url, bearer(expired)) == 401
    assert await refused_status(full_stack.ws_url, bearer(revoked)) == 401


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"type": "indicator.seen"}, 400),
        ({"mode": "drill"}, 400),
        ({"cursor": "not-a-cursor"}, 400),
        ({"colour": "red"}, 400),
    ],
)
async def test_invalid_subscriptions_get_400(full_stack: Stack, params: dict[str, str], status: int) -> None:
    key = full_stack.add_key("vidshare", "provider")
    assert await refused_status(url(full_stack.ws_url, **params), bearer(key)) == status


async def test_forbidden_filters_get_403(full_stack: Stack) -> None:
    observer = full_stack.add_key("press", "observer")
    controller = full_stack.add_key("drill-hub", "coordinator", exercise_only=True)
    assert await refused_status(url(full_stack.ws_url, type="indicator.shared"), bearer(observer)) == 403
    assert await refused_status(full_stack.ws_url, bearer(controller)) == 403  # live is the default
    async with client(full_stack.ws_url, controller, mode="exercise") as ws:
        assert (await recv(ws))["type"] == "subscribed"


async def test_other_paths_get_404(full_stack: Stack) -> None:
    key = full_stack.add_key("vidshare", "provider")
    base = full_stack.ws_url.removesuffix("/v1/stream")
    assert await refused_status(base + "/v1/streams", bearer(key)) == 404
    assert await refused_status(base + "/", bearer(key)) == 404


async def test_origins_outside_the_allowlist_are_refused(full_stack: Stack) -> None:
    key = full_stack.add_key("vidshare", "provider")
    status = await refused_status(full_stack.ws_url, bearer(key), origin=Origin("https://evil.example"))
    assert status == 403
    async with client(full_stack.ws_url, key) as ws:  # no Origin, as bots do
        assert (await recv(ws))["type"] == "subscribed"
    async with connect(full_stack.ws_url, additional_headers=bearer(key), origin=LOCAL) as ws:
        assert json.loads(await ws.recv())["type"] == "subscribed"


async def test_a_browser_authenticates_with_its_first_message(full_stack: Stack) -> None:
    key = full_stack.add_key("vidshare", "provider")
    crisis = await open_crisis(full_stack)
    async with connect(full_stack.ws_url, origin="http://localhost:8000") as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "auth", "token": key, "crises": [crisis.subject]}))
        hello = json.loads(await ws.recv())
        assert hello["type"] == "subscribed" and hello["filter"]["crises"] == [crisis.subject]
        state = json.loads(await ws.recv())
        assert state["type"] == "state" and state["crisis"]["id"] == crisis.subject


@pytest.mark.parametrize(
    "first",
    [
        '{"type": "auth", "token": "cb_nope_nope"}',
        '{"type": "subscribe"}',
        '{"type": "auth", "token": "%(observer)s", "types": ["indicator.shared"]}',
    ],
)
async def test_a_browser_with_a_bad_first_message_is_closed_1008(full_stack: Stack, first: str) -> None:
    observer = full_stack.add_key("press", "observer")
    await open_crisis(full_stack)
    async with connect(full_stack.ws_url) as ws:
        code, reason = await closed_before_any_event(ws, first % {"observer": observer})
    assert code == 1008 and reason


async def test_a_browser_that_says_nothing_is_closed_1008(open_stack: OpenStack) -> None:
    async with open_stack(gateway_auth_timeout_s=0.3) as s, connect(s.ws_url) as ws:
        code, reason = await closed_before_any_event(ws)
    assert code == 1008 and "auth" in reason


async def test_an_oversize_message_is_closed_1009(open_stack: OpenStack) -> None:
    async with open_stack(gateway_max_message_bytes=1024) as s:
        key = s.add_key("vidshare", "provider")
        async with client(s.ws_url, key) as ws:
            await recv(ws)
            await ws.send(json.dumps({"type": "subscribe", "crises": ["x" * 100] * 20}))
            with pytest.raises(ConnectionClosed) as info:
                await recv(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_a_key_revoked_while_connected_ends_the_stream(open_stack: OpenStack) -> None:
    async with open_stack(gateway_heartbeat_s=0.3) as s:
        record, key = s.keys.add("vidshare", "provider")  # type: ignore[arg-type]
        async with client(s.ws_url, key, mode=Mode.LIVE.value) as ws:
            await recv(ws)
            s.keys.revoke(record.id)
            with pytest.raises(ConnectionClosed) as info:
                await recv(ws, timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
