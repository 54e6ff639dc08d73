"""The API's edges on a real uvicorn server: 405 with an exact Allow, 413 problems, slow clients cut."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from crisis.runtime import stack
from tests.api.conftest import Actors, auth
from tests.conftest import Stack

pytestmark = pytest.mark.kafka

PROBLEM = "application/problem+json"


# ------------------------------------------------------------------ 405 and Allow


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/crises", "GET, POST"),  # two routes on one path: the union
        ("PUT", "/v1/crises/c1", "GET"),
        ("GET", "/v1/crises/c1/transitions", "POST"),
        ("PATCH", "/v1/crises/c1/indicators", "GET, POST"),
        ("GET", "/v1/crises/c1/indicators/i1/retract", "POST"),
        ("POST", "/v1/crises/c1/report", "GET"),
        ("POST", "/livez", "GET"),
        ("HEAD", "/v1/crises", "GET, POST"),  # HEAD is not served on API routes, and not listed
        ("OPTIONS", "/v1/crises/c1", "GET"),  # nor is OPTIONS
        ("DELETE", "/docs", "GET, HEAD"),  # Starlette's own routes serve HEAD: listed where served
    ],
)
async def test_a_405_names_exactly_the_methods_the_path_serves(
    actors: Actors, method: str, path: str, allow: str
) -> None:
    r = await actors.call(method, path, "coordinator")
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allow
    assert r.headers["content-type"] == PROBLEM
    if method != "HEAD":
        assert r.json()["status"] == 405
    for served in allow.split(", "):  # and each method named is one the path answers with something else
        if served not in ("POST",):
            assert (await actors.call(served, path, "coordinator")).status_code != 405


async def test_unknown_paths_are_404_not_405(actors: Actors) -> None:
    r = await actors.call("DELETE", "/v1/nowhere", "coordinator")
    assert r.status_code == 404 and "allow" not in r.headers


# ------------------------------------------------------------------ 413


async def test_a_declared_length_over_the_limit_gets_413_problem_before_the_body_is_read(
    actors: Actors,
) -> None:
    limit = actors.stack.settings.max_body_bytes
    crisis = await actors.crisis()
    r = await actors.call(
        "POST",
        f"/v1/crises/{crisis['id']}/indicators",
        "authority",
        content=b"x" * (limit + 1),
        headers={"Content-Type": "application/json"},
    )
    assert int(r.request.headers["content-length"]) == limit + 1
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "too_large" and str(limit) in r.json()["detail"]
    # The connection was drained, not broken: the same client goes on.
    assert (await actors.call("GET", f"/v1/crises/{crisis['id']}", "authority")).status_code == 200


async def test_a_chunked_body_over_the_limit_gets_413_problem(actors: Actors) -> None:
    limit = actors.stack.settings.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    r = await actors.call(
        "POST", "/v1/crises", "coordinator", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "too_large"


# ------------------------------------------------------------------ slow clients


@dataclass
class Dripped:
    seconds: float  # from the first byte sent to the server's close
    answer: bytes

    @property
    def status(self) -> int | None:
        return int(self.answer.split(b" ", 2)[1]) if self.answer else None

    def problem(self) -> dict[str, Any]:
        head, _, body = self.answer.partition(b"\r\n\r\n")
        assert b"content-type: application/problem+json" in head.lower()
        assert b"connection: close" in head.lower()
        document: dict[str, Any] = json.loads(body)
        return document


async def drip(url: str, first: bytes, byte: bytes, every: float = 0.5) -> Dripped:
    """Sends `first`, then `byte` every `every` seconds, until the server closes the connection."""
    address = urlsplit(url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    start = time.monotonic()
    writer.write(first)
    read = asyncio.create_task(reader.read())  # everything until the server closes
    try:
        async with asyncio.timeout(30):
            while not read.done():
                if byte and not writer.is_closing():
                    with contextlib.suppress(ConnectionError):
                        writer.write(byte)
                await asyncio.wait({read}, timeout=every)
        try:
            answer = read.result()
        except ConnectionResetError:
            answer = b""
        return Dripped(time.monotonic() - start, answer)
    finally:
        read.cancel()
        writer.close()


def head_of(method: str, path: str, *headers: str) -> bytes:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: crisis-bus", *headers, "", ""]).encode()


async def test_slow_heads_and_bodies_are_cut_within_10s_while_others_are_answered(actors: Actors) -> None:
    s = actors.stack.settings
    assert s.http_head_timeout_s <= 10 and s.http_body_timeout_s <= 10  # the defaults
    url = actors.stack.api_url
    coordinator = auth(actors.key("coordinator"))
    slow_head = (
        head_of("GET", "/v1/crises", f"Authorization: {coordinator['Authorization']}")[:-2] + b"X-Drip: "
    )
    slow_body = (
        head_of(
            "POST",
            "/v1/crises",
            f"Authorization: {coordinator['Authorization']}",
            "Content-Type: application/json",
            "Content-Length: 1000",
        )
        + b'{"title": "'
    )
    drippers = asyncio.gather(
        drip(url, slow_head, b"a"),
        drip(url, slow_body, b"a"),
        drip(url, b"", b""),  # connects and says nothing
    )
    answered: list[int] = []
    async with httpx.AsyncClient(base_url=url, timeout=5, headers=coordinator) as other:
        while not drippers.done():
            for request in (other.get("/livez"), other.get("/v1/crises"), other.post("/v1/crises", json={})):
                answered.append((await request).status_code)
            await asyncio.sleep(0.3)
    head, body, silent = await drippers

    assert head.status == 408 and head.problem()["code"] == "too_slow"
    assert body.status == 408 and "body" in body.problem()["detail"]
    assert silent.answer == b""  # nothing was asked: closed without an answer
    for cut, timeout in (
        (head, s.http_head_timeout_s),
        (body, s.http_body_timeout_s),
        (silent, s.http_head_timeout_s),
    ):
        assert cut.seconds < timeout + 2
    # Meanwhile the other client was answered, request after request (422: the empty crisis is invalid).
    assert len(answered) >= 3 * 5 and set(answered) == {200, 422}


Opened = Callable[..., contextlib.AbstractAsyncContextManager[Stack]]


@pytest.fixture
def short_deadlines(make_settings: Any) -> Opened:
    @contextlib.asynccontextmanager
    async def open_(**overrides: Any) -> AsyncIterator[Stack]:
        values = {"http_head_timeout_s": 1.0, "http_body_timeout_s": 1.0, **overrides}
        async with stack(make_settings(**values), gateway=False) as running:
            running.__class__ = Stack
            yield running  # type: ignore[misc]

    return open_


async def test_each_request_on_a_kept_alive_connection_gets_its_own_head_deadline(
    short_deadlines: Opened,
) -> None:
    async with short_deadlines() as s:
        # A quick request, then a second one whose head drips: the first is answered, the second cut.
        first = head_of("GET", "/livez")
        cut = await drip(s.api_url, first + b"GET /livez HTTP/1.1\r\nX-Drip: ", b"a", every=0.2)
    responses = cut.answer.split(b"HTTP/1.1 ")[1:]
    assert [r[:3] for r in responses] == [b"200", b"408"]
    assert cut.seconds < 1.0 + 2


async def test_a_body_that_arrives_in_time_is_served_though_it_comes_in_pieces(
    short_deadlines: Opened,
) -> None:
    async with short_deadlines() as s:
        key = s.add_key("hub", "coordinator")
        body = json.dumps({"title": "Live-streamed attack", "status": "monitoring"}).encode()
        address = urlsplit(s.api_url)
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        head = head_of(
            "POST",
            "/v1/crises",
            f"Authorization: Bearer {key}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
        )
        writer.write(head + body[:10])
        await asyncio.sleep(0.4)
        writer.write(body[10:])
        async with asyncio.timeout(10):
            answer = await reader.read()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:200]


async def test_an_unread_body_after_a_413_is_drained_only_until_the_body_deadline(
    short_deadlines: Opened,
) -> None:
    async with short_deadlines() as s:
        huge = head_of("POST", "/v1/crises", "Content-Type: application/json", "Content-Length: 10000000000")
        cut = await drip(s.api_url, huge, b" " * 65536, every=0.05)
    assert cut.status == 413 and b"408" not in cut.answer  # answered once; then the connection is closed
    assert cut.seconds < 1.0 + 2
