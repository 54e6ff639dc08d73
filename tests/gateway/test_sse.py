"""Server-Sent Events at GET /v1/events, read with a third-party SSE client (httpx-sse) on real sockets."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from crisis.domain.enums import Role, Tlp
from crisis.domain.envelope import Envelope
from crisis.gateway import cursor as cursors
from tests.conftest import Stack
from tests.gateway.conftest import OpenStack, gateway_port, indicators, open_crisis, publish, seq
from tests.gateway.events import indicator_shared
from tests.gateway.proxy import CuttableProxy

pytestmark = pytest.mark.kafka


def events_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1/events"


def headers(key: str, last_id: str | None = None) -> dict[str, str]:
    out = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    if last_id:
        out["Last-Event-ID"] = last_id
    return out


async def read(
    port: int,
    key: str,
    count: int,
    *,
    params: dict[str, str] | None = None,
    last_id: str | None = None,
    timeout: float = 10.0,
) -> list[ServerSentEvent]:
    """The first `count` SSE events of one response (control messages included)."""
    out: list[ServerSentEvent] = []
    async with (
        asyncio.timeout(timeout),
        httpx.AsyncClient(timeout=30) as http,
        aconnect_sse(http, "GET", events_url(port), headers=headers(key, last_id), params=params) as source,
    ):
        async for sse in source.aiter_sse():
            out.append(sse)
            if len(out) == count:
                break
    return out


async def test_a_stream_starts_with_subscribed_and_state_then_events_whose_id_is_the_cursor(
    full_stack: Stack,
) -> None:
    s = full_stack
    crisis = await open_crisis(s)
    key = s.add_key("vidshare", "provider")
    reader = asyncio.create_task(read(gateway_port(s), key, 3, params={"type": "indicator.shared"}))
    await asyncio.sleep(0.5)
    shared = indicator_shared(crisis)
    await publish(s.bus, [shared])
    subscribed, state, event = await reader
    assert subscribed.event == "subscribed"
    assert json.loads(subscribed.data)["filter"]["types"] == ["indicator.shared"]
    assert state.event == "state"
    assert json.loads(state.data)["crisis"]["id"] == crisis.subject
    assert event.event == "message"
    body = json.loads(event.data)
    assert body["id"] == shared.id
    assert event.id == body["cursor"]


async def test_refusals_are_plain_http_answers_before_any_event(full_stack: Stack) -> None:
    s = full_stack
    observer = s.add_key("watchdog", "observer")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port(s)}") as http:
        assert (await http.get("/v1/events")).status_code == 401
        unknown = await http.get("/v1/events", headers={"Authorization": "Bearer nope"})
        assert unknown.status_code == 401
        assert unknown.headers["WWW-Authenticate"].startswith("Bearer")
        bad = await http.get("/v1/events", params={"kind": "crc32"}, headers=headers(observer))
        assert bad.status_code == 400
        assert "crc32" in bad.text
        never = await http.get("/v1/events", params={"type": "indicator.shared"}, headers=headers(observer))
        assert never.status_code == 403
        assert (
            await http.get("/v1/events", headers={**headers(observer), "Accept": "text/html"})
        ).status_code == 406
        garbled = await http.get("/v1/events", headers={**headers(observer), "Last-Event-ID": "not a cursor"})
        assert garbled.status_code == 400
        assert "Last-Event-ID" in garbled.text


async def test_tlp_red_reaches_only_its_recipients(full_stack: Stack) -> None:
    s = full_stack
    crisis = await open_crisis(s)
    named, other = s.add_key("vidshare", "provider"), s.add_key("clipsite", "provider")
    params = {"type": "indicator.shared"}
    port = gateway_port(s)
    to_named = asyncio.create_task(read(port, named, 4, params=params))
    to_other = asyncio.create_task(read(port, other, 3, params=params))
    await asyncio.sleep(0.5)
    red = indicator_shared(crisis, tlp=Tlp.RED, recipients=("vidshare",))
    amber = indicator_shared(crisis)
    await publish(s.bus, [red, amber])
    # subscribed, state, then the events: the red one only where it is addressed.
    assert [json.loads(e.data)["id"] for e in (await to_named)[2:]] == [red.id, amber.id]
    assert [json.loads(e.data)["id"] for e in (await to_other)[2:]] == [amber.id]


async def test_a_cursor_from_another_log_gets_a_gap_event_then_the_stream(full_stack: Stack) -> None:
    s = full_stack
    await open_crisis(s)
    key = s.add_key("vidshare", "provider")
    foreign = cursors.encode(cursors.origin("another-cluster", "crisis-events"), [0, 0, 0])
    got = await read(gateway_port(s), key, 2, params={"cursor": foreign})
    assert [e.event for e in got] == ["subscribed", "gap"]
    gap = json.loads(got[1].data)
    assert gap["reason"] == "foreign_cursor"
    assert got[1].id == gap["cursor"]


async def test_cut_mid_stream_resumes_with_last_event_id_losing_and_repeating_nothing(
    full_stack: Stack,
) -> None:
    s = full_stack
    crises = [await open_crisis(s) for _ in range(3)]
    sent = indicators(crises, 3_000)
    key = s.add_key("vidshare", "provider")
    cuts = sorted(random.Random(7).sample(range(100, 2_500), 8))
    async with CuttableProxy(gateway_port(s)) as proxy:
        client = asyncio.create_task(resuming_reader(proxy, key, len(sent), cuts))
        await asyncio.sleep(0.5)
        await publish(s.bus, sent, batch=100, pause=0.005)
        got, connects = await asyncio.wait_for(client, 60)
        cut = proxy.cuts  # leaving the proxy cuts once more
    # A cut counts only when it drops a live response; each one is a reconnect with Last-Event-ID.
    assert cut >= 5
    assert connects == cut + 1
    check_exact(got, sent)


async def resuming_reader(
    proxy: CuttableProxy, key: str, count: int, cuts: list[int]
) -> tuple[list[dict[str, Any]], int]:
    """What an SSE client does after a cut: reconnect with the last event id it saw."""
    got: list[dict[str, Any]] = []
    last_id: str | None = None
    connects = 0
    params = {"type": "indicator.shared"}
    async with httpx.AsyncClient(timeout=30) as http:
        while len(got) < count:
            connects += 1
            try:
                async with aconnect_sse(
                    http, "GET", events_url(proxy.port), headers=headers(key, last_id), params=params
                ) as source:
                    async for sse in source.aiter_sse():
                        if sse.id:
                            last_id = sse.id
                        if sse.event != "message":
                            continue
                        got.append(json.loads(sse.data))
                        if cuts and len(got) >= cuts[0] and proxy.cut():
                            cuts.pop(0)
                        if len(got) == count:
                            break
            except (httpx.TransportError, httpx.RemoteProtocolError):
                await asyncio.sleep(0.02)
    return got, connects


def check_exact(got: Sequence[dict[str, Any]], sent: Sequence[Envelope]) -> None:
    ids = [m["id"] for m in got]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicated"
    assert set(ids) == {e.id for e in sent}, f"{len({e.id for e in sent} - set(ids))} lost"
    per_crisis: dict[str, list[int]] = {}
    for m in got:
        per_crisis.setdefault(m["subject"], []).append(seq(m))
    assert all(numbers == sorted(numbers) for numbers in per_crisis.values())


async def test_a_revoked_key_ends_its_sse_stream_with_a_closing_event(full_stack: Stack) -> None:
    s = full_stack
    await open_crisis(s)
    record, key = s.keys.add("vidshare", Role.PROVIDER)
    got: list[ServerSentEvent] = []

    async def listen() -> None:
        async with (
            httpx.AsyncClient(timeout=30) as http,
            aconnect_sse(http, "GET", events_url(gateway_port(s)), headers=headers(key)) as source,
        ):
            async for sse in source.aiter_sse():
                got.append(sse)

    reader = asyncio.create_task(listen())
    await asyncio.sleep(0.5)
    s.keys.revoke(record.id)
    await asyncio.wait_for(reader, 3.0)  # the response ends: the server closed it
    closing = json.loads(got[-1].data)
    assert got[-1].event == "closing"
    assert closing["code"] == 1008
    assert "revoked" in closing["reason"]


async def test_a_stalled_sse_client_gets_closing_with_its_cursor_and_resumes_losing_nothing(
    open_stack: OpenStack,
) -> None:
    async with open_stack(gateway_buffer_bytes=65536) as s:
        crises = [await open_crisis(s) for _ in range(2)]
        key = s.add_key("vidshare", "provider")
        port = gateway_port(s)
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        with sock:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            request = (
                f"GET /v1/events?type=indicator.shared HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
            )
            await loop.sock_sendall(sock, request.encode())
            await asyncio.sleep(0.3)
            sent = indicators(crises, 6_000)
            await publish(s.bus, sent)  # ~4 MB against 64 KB of buffer: the stream cannot keep it
            await asyncio.sleep(2.0)
            body = b""
            async with asyncio.timeout(15):
                while chunk := await loop.sock_recv(sock, 1 << 20):
                    body += chunk
        blocks = body.partition(b"\r\n\r\n")[2].decode().split("\n\n")
        parsed = [dict(line.split(": ", 1) for line in b.splitlines() if ": " in line) for b in blocks if b]
        got = [json.loads(p["data"]) for p in parsed if "event" not in p and "data" in p]
        closing = parsed[-1]
        assert closing["event"] == "closing"
        assert json.loads(closing["data"])["code"] == 4008
        assert len(got) < len(sent)
        # What was missed comes after the cursor of the closing event, exactly.
        rest = await read(
            port, key, 1 + len(sent) - len(got), params={"type": "indicator.shared"}, last_id=closing["id"]
        )
        check_exact([*got, *(json.loads(e.data) for e in rest[1:])], sent)
