"""The one HTTP client against a real local server: Retry-After honoured, writes repeated only safely."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from crisis.client import ApiError, AsyncClient, Client, Unreachable
from crisis.client.retry import Policy, retry_after


class Script:
    """Answers given in turn (status, headers), the last one repeated; every request recorded."""

    def __init__(self, *answers: tuple[int, dict[str, str]]) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[str, dict[str, str], float]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script((200, {}))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            script.seen.append((self.command, dict(self.headers), time.monotonic()))
            status, headers = script.answers.pop(0) if len(script.answers) > 1 else script.answers[0]
            body = json.dumps(
                {"ok": True} if status < 400 else {"title": "Busy", "status": status, "detail": "slow down"}
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_429_is_retried_after_its_retry_after(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(429, {"Retry-After": "1"}), (200, {})]
    with Client(url, "k") as api:
        assert api.post("/v1/crises", {"title": "x"}) == {"ok": True}
    (m1, h1, t1), (m2, h2, t2) = script.seen
    assert (m1, m2) == ("POST", "POST")
    # The server's pause is kept (jitter only adds), and the retry is the same write, not a new one.
    assert t2 - t1 >= 1.0
    assert h1["Idempotency-Key"] == h2["Idempotency-Key"] and h1["Authorization"] == "Bearer k"


async def test_the_async_client_retries_a_503_the_same_way(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(503, {"Retry-After": "1"}), (503, {}), (200, {})]
    async with AsyncClient(url, "k") as api:
        assert await api.get("/v1/crises") == {"ok": True}
    times = [t for _, _, t in script.seen]
    assert len(times) == 3 and times[1] - times[0] >= 1.0


def test_a_write_without_idempotency_key_is_never_repeated(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(503, {}), (200, {})]
    with Client(url, "k") as api, pytest.raises(ApiError) as caught:
        api.request("POST", "/v1/crises/c/actions", json={}, idempotency_key="")
    assert len(script.seen) == 1 and caught.value.status == 503
    assert "Idempotency-Key" not in script.seen[0][1]


def test_a_pause_longer_than_the_policy_allows_is_reported_not_waited(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(429, {"Retry-After": "3600"}), (200, {})]
    with Client(url, "k", policy=Policy(retry_after_max_s=5)) as api, pytest.raises(ApiError) as caught:
        api.get("/v1/crises")
    assert len(script.seen) == 1
    assert "Busy (429): slow down" in str(caught.value) and "retry after 3600 s" in str(caught.value)


def test_retries_end_with_the_last_answer(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(503, {})]
    policy = Policy(attempts=3, wait_initial_s=0.01, wait_max_s=0.02, wait_jitter_s=0.01)
    with Client(url, "k", policy=policy) as api, pytest.raises(ApiError) as caught:
        api.get("/v1/crises")
    assert len(script.seen) == 3 and caught.value.status == 503


def test_nothing_listening_is_one_message_saying_what_to_do() -> None:
    policy = Policy(attempts=2, wait_initial_s=0.01, wait_max_s=0.02, wait_jitter_s=0.01)
    api = Client(f"http://127.0.0.1:{free_port()}", "k", policy=policy)
    with api, pytest.raises(Unreachable) as caught:
        api.get("/v1/crises")
    message = str(caught.value)
    assert "cannot reach the API at http://127.0.0.1:" in message
    assert "CRISIS_API_URL" in message and "\n" not in message


def test_the_api_url_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRISIS_API_URL", "http://api.example:9000/")
    assert Client().url == "http://api.example:9000"
    assert Client("http://other:1").url == "http://other:1"
    monkeypatch.delenv("CRISIS_API_URL")
    assert Client().url == "http://127.0.0.1:8000"


def test_retry_after_as_seconds_or_a_date() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    ask = httpx.Response(
        429, headers={"Retry-After": format_datetime(now + timedelta(seconds=30), usegmt=True)}
    )
    assert retry_after(ask, now) == 30
    assert retry_after(httpx.Response(503, headers={"Retry-After": "7"})) == 7
    assert retry_after(httpx.Response(503)) is None
    assert retry_after(httpx.Response(503, headers={"Retry-After": "soon"})) is None
