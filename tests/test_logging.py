"""Logs: JSON lines off a terminal (the libraries' too), context bound to every line, keys never written,
client-supplied strings cut, failed authentication logged a few times per address."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import websockets
from websockets.exceptions import InvalidStatus

from crisis.broker import free_port
from crisis.domain.enums import Role
from crisis.keys import KeyStore
from crisis.logging import MAX_ITEMS, MAX_VALUE_CHARS, FailureLog, _log_uncaught, configure_logging
from tests.conftest import KafkaTarget


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Logging configured as a server off a terminal; yields a reader of the lines written so far."""
    hook = sys.excepthook
    configure_logging("info", json=True)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]

    try:
        yield lines
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
        root = logging.getLogger()
        for handler in [h for h in root.handlers if type(h).__name__ == "_Handler"]:
            root.removeHandler(handler)
        root.setLevel(logging.WARNING)
        for name in ("aiokafka", "kafka", "websockets"):
            logging.getLogger(name).setLevel(logging.NOTSET)
        logging.captureWarnings(False)
        sys.excepthook = hook


def test_json_lines_carry_bound_context_and_never_a_key(json_logs: Any) -> None:
    structlog.contextvars.bind_contextvars(request_id="req-1")
    structlog.get_logger("t").info("something_happened", key="cb_abc_secret", org="hub")
    [line] = json_logs()
    assert line["event"] == "something_happened"
    assert line["request_id"] == "req-1"
    assert line["org"] == "hub"
    assert line["key"] == "[redacted]"
    assert "cb_abc_secret" not in json.dumps(line)


def test_library_lines_are_json_with_the_bound_context(json_logs: Any) -> None:
    structlog.contextvars.bind_contextvars(conn=7)
    logging.getLogger("aiokafka.consumer.fetcher").warning("fetch failed for %s", "partition 3")
    logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://127.0.0.1:8000")
    logging.getLogger("aiokafka.conn").info("chatter")  # below the libraries' WARNING floor
    try:
        raise ValueError("broken")
    except ValueError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    kafka, uvicorn, crash = json_logs()
    assert kafka == kafka | {"logger": "aiokafka.consumer.fetcher", "level": "warning", "conn": 7}
    assert kafka["event"] == "fetch failed for partition 3"
    assert uvicorn["logger"] == "uvicorn.error" and uvicorn["level"] == "info" and uvicorn["conn"] == 7
    assert crash["level"] == "error" and "ValueError: broken" in crash["exception"]


def test_client_supplied_strings_are_cut(json_logs: Any) -> None:
    cursor = "c" * 5000
    crises = [f"crisis-{n}-" + "x" * 300 for n in range(500)]
    structlog.get_logger("t").info("stream_gap", cursor=cursor, filter={"crises": crises})
    logging.getLogger("uvicorn.error").warning("Invalid HTTP request: %s", "y" * 10_000)
    ours, theirs = json_logs()
    assert ours["cursor"].startswith("c" * MAX_VALUE_CHARS) and len(ours["cursor"]) < MAX_VALUE_CHARS + 30
    listed = ours["filter"]["crises"]
    assert len(listed) == MAX_ITEMS + 1 and listed[-1] == f"...[{500 - MAX_ITEMS} more]"
    assert all(len(c) < MAX_VALUE_CHARS + 30 for c in listed)
    assert len(theirs["event"]) < 1000


def test_a_crash_outside_any_handler_is_logged_with_its_traceback(json_logs: Any) -> None:
    """What sys.excepthook logs when a server dies: the traceback, though no exception is being handled."""
    try:
        raise RuntimeError("store writer failed")
    except RuntimeError as exc:
        crashed = exc
    _log_uncaught(type(crashed), crashed, crashed.__traceback__)
    (line,) = json_logs()
    assert line["event"] == "uncaught_exception"
    assert "RuntimeError: store writer failed" in line["exception"]


def test_failed_authentication_is_logged_a_few_times_per_address() -> None:
    limit = FailureLog(per_address=3, window_s=60, addresses=2)
    first = [limit.admit("10.0.0.1", now=0.0) for _ in range(10)]
    assert first == [0, 0, 0, None, None, None, None, None, None, None]
    # Another address has its own share.
    assert [limit.admit("10.0.0.2", now=1.0) for _ in range(4)] == [0, 0, 0, None]
    # The next window's first line says how many were left out.
    assert limit.admit("10.0.0.1", now=61.0) == 7
    assert limit.admit("10.0.0.1", now=61.5) == 0
    # The table is bounded: a third address pushes out the oldest (10.0.0.2), which then starts afresh.
    assert limit.admit("10.0.0.3", now=62.0) == 0
    assert limit.admit("10.0.0.2", now=62.0) == 0


def test_failure_lines_name_the_address_until_its_share_is_used(json_logs: Any) -> None:
    limit = FailureLog(per_address=2)
    log = structlog.get_logger("crisis.api.access")
    for _ in range(4):
        limit.warn(log, "auth_failed", "192.0.2.7", reason="unknown_key")
    lines = json_logs()
    assert [line["event"] for line in lines] == ["auth_failed", "auth_failed"]
    assert lines[0] | {"client": "192.0.2.7", "suppressed": 0, "level": "warning"} == lines[0]


class Served:
    """`crisis serve api|gateway` as a real process, its stderr piped and read line by line."""

    def __init__(self, what: str, kafka: KafkaTarget, keys_file: Path) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")}
        env.update(
            CRISIS_KAFKA_BOOTSTRAP=kafka.bootstrap,
            CRISIS_KAFKA_TOPIC=f"test-{uuid.uuid4().hex[:12]}",
            CRISIS_KAFKA_PARTITIONS="3",
            CRISIS_KAFKA_IDEMPOTENCE=str(kafka.idempotence).lower(),
            CRISIS_KEYS_FILE=str(keys_file),
            CRISIS_LOG_LEVEL="debug",  # every library at its chattiest: all of it must still be JSON
        )
        cmd = [sys.executable, "-m", "crisis.cli", "serve", what, "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        # Drained as it comes: a server must never block on a full pipe.
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("".join(self.lines[-20:]))
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError("".join(self.lines[-20:]))

    def stop(self) -> list[dict[str, Any]]:
        """Stop the process and return its stderr, each line parsed as JSON (failing on any other line)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        parsed = []
        for line in self.lines:
            try:
                parsed.append(json.loads(line))
            except ValueError:
                pytest.fail(f"a line on stderr is not JSON: {line!r}")
        return parsed


def _loggers(lines: list[dict[str, Any]]) -> set[str]:
    return {str(line.get("logger", "")).split(".")[0] for line in lines}


@pytest.mark.kafka
async def test_an_api_process_writes_only_json_one_access_line_per_request(
    kafka: KafkaTarget, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.json"
    _, key = KeyStore(keys_file).add("hub", Role.COORDINATOR)
    server = Served("api", kafka, keys_file)
    try:
        server.wait_ready()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            ok = await http.get(
                "/v1/crises", headers={"Authorization": f"Bearer {key}", "X-Request-Id": "r-ok"}
            )
            assert ok.status_code == 200
            r = await http.post(
                "/v1/crises",
                headers={"Authorization": f"Bearer {key}", "X-Request-Id": "r-open"},
                json={
                    "title": "Attack stream",
                    "status": "activated",
                    "level": 1,
                    "criteria": ["ongoing_violent_event"],
                },
            )
            assert r.status_code == 201
            one = await http.get(
                f"/v1/crises/{r.json()['id']}",
                headers={"Authorization": f"Bearer {key}", "X-Request-Id": "r-one"},
            )
            assert one.status_code == 200
            for n in range(8):
                wrong = {"Authorization": "Bearer cb_wrong_guess", "X-Request-Id": f"r-bad-{n}"}
                assert (await http.get("/v1/crises", headers=wrong)).status_code == 401
    finally:
        lines = server.stop()
    assert {"crisis", "aiokafka", "uvicorn"} <= _loggers(lines)
    access = {line["request_id"]: line for line in lines if line["event"] == "http_request"}
    assert (
        access["r-ok"] | {"method": "GET", "route": "/v1/crises", "status": 200, "org": "hub"}
        == access["r-ok"]
    )
    assert access["r-open"]["status"] == 201 and access["r-open"]["route"] == "/v1/crises"
    assert access["r-one"]["route"] == "/v1/crises/{crisis_id}"
    assert isinstance(access["r-one"]["duration_ms"], float)
    assert all(f"r-bad-{n}" in access and "org" not in access[f"r-bad-{n}"] for n in range(8))
    assert sum(1 for line in lines if line["event"] == "http_request" and line["request_id"] == "r-ok") == 1
    failed = [line for line in lines if line["event"] == "auth_failed"]
    assert len(failed) == 5 and {line["client"] for line in failed} == {"127.0.0.1"}
    text = "".join(server.lines)
    assert key not in text and "cb_wrong_guess" not in text


@pytest.mark.kafka
async def test_a_gateway_process_writes_only_json_with_the_connection_id(
    kafka: KafkaTarget, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.json"
    _, key = KeyStore(keys_file).add("hub", Role.COORDINATOR)
    server = Served("gateway", kafka, keys_file)
    try:
        server.wait_ready()
        stream = f"ws://127.0.0.1:{server.port}/v1/stream"
        crises = ",".join(str(uuid.uuid4()) for _ in range(60))  # a long filter, as a client may send
        headers = {"Authorization": f"Bearer {key}"}
        async with websockets.connect(f"{stream}?crisis={crises}", additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["type"] == "subscribed"
        for _ in range(2):
            with pytest.raises(InvalidStatus):
                async with websockets.connect(stream, additional_headers={"Authorization": "Bearer cb_nope"}):
                    pass
    finally:
        lines = server.stop()
    assert {"crisis", "aiokafka", "websockets"} <= _loggers(lines)
    [subscribed] = [line for line in lines if line["event"] == "stream_subscribed"]
    assert subscribed["org"] == "hub" and isinstance(subscribed["conn"], int)
    assert len(subscribed["filter"]["crises"]) == MAX_ITEMS + 1
    assert subscribed["filter"]["crises"][-1] == f"...[{60 - MAX_ITEMS} more]"
    assert [line["client"] for line in lines if line["event"] == "auth_failed"] == ["127.0.0.1"] * 2
    assert key not in "".join(server.lines)
