"""Actors for API tests: one key per role, each in its own organisation, and a client on real sockets."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest_asyncio

from crisis.broker import free_port
from crisis.config import Settings
from tests.conftest import Stack

ORGS = {"coordinator": "hub", "authority": "bka", "provider": "vidshare", "observer": "press"}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Actors:
    stack: Stack
    http: httpx.AsyncClient
    keys: dict[str, str] = field(default_factory=dict)

    def key(self, role: str, org: str | None = None, **kwargs: Any) -> str:
        """A key for `role` (in the role's usual org unless `org` is given), made once and reused."""
        name = f"{role}:{org or ORGS[role]}:{sorted(kwargs.items())}"
        if name not in self.keys:
            self.keys[name] = self.stack.add_key(org or ORGS[role], role, **kwargs)
        return self.keys[name]

    async def call(
        self, method: str, path: str, role: str, org: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {**auth(self.key(role, org)), **kw.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kw)

    async def crisis(self, **body: Any) -> dict[str, Any]:
        """A crisis opened by the coordinator (activated at level 1 unless told otherwise)."""
        payload = {
            "title": "Live-streamed attack",
            "status": "activated",
            "level": 1,
            "criteria": ["ongoing_violent_event"],
            **body,
        }
        r = await self.call("POST", "/v1/crises", "coordinator", json=payload)
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result

    async def share(
        self,
        crisis_id: str,
        items: list[Any],
        role: str = "authority",
        org: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> httpx.Response:
        body = {"indicators": items, **extra}
        path = f"/v1/crises/{crisis_id}/indicators"
        return await self.call("POST", path, role, org, json=body, headers=headers or {})

    async def shared_id(
        self, crisis_id: str, item: dict[str, Any], role: str = "authority", **kw: Any
    ) -> str:
        r = await self.share(crisis_id, [item], role, **kw)
        assert r.status_code == 200, r.text
        [result] = r.json()["items"]
        assert result["status"] in ("created", "sighting"), result
        indicator_id: str = result["indicator_id"]
        return indicator_id


@pytest_asyncio.fixture
async def actors(api_stack: Stack) -> AsyncIterator[Actors]:
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as http:
        yield Actors(api_stack, http)


class ApiProcess:
    """`crisis serve api` as a real process on a free port, stopped (and reaped) on exit; with its own local
    store of the folded log (CRISIS_STATE_DIR) in `state_dir`, or a fresh one."""

    def __init__(self, settings: Settings, state_dir: str | None = None) -> None:
        self._own_state = state_dir is None
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="crisis-state-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")}
        env.update(
            CRISIS_BUS_URL=settings.bus_url,
            CRISIS_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
            CRISIS_KAFKA_TOPIC=settings.kafka_topic,
            CRISIS_KAFKA_PARTITIONS=str(settings.kafka_partitions),
            CRISIS_KEYS_FILE=str(settings.keys_file),
            CRISIS_ORGS_FILE=str(settings.orgs_file),
            CRISIS_WEBHOOKS_FILE=str(settings.webhooks_file),
            CRISIS_KAFKA_IDEMPOTENCE=str(settings.kafka_idempotence).lower(),
            CRISIS_KAFKA_FETCH_WAIT_MS=str(settings.kafka_fetch_wait_ms),
            CRISIS_READ_AFTER_TIMEOUT_S=str(settings.read_after_timeout_s),
            CRISIS_LOG_LEVEL="warning",
            CRISIS_STATE_DIR=self.state_dir,
        )
        cmd = [sys.executable, "-m", "crisis.cli", "serve", "api", "--port", str(self.port)]
        # A file, not a pipe: a server that logs more than a pipe holds must never block on it.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=self._log)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"crisis serve api exited: {self.stderr()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"crisis serve api not ready on {self.url}")

    def stderr(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        if self._own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)


@contextlib.contextmanager
def api_processes(settings: Settings, count: int) -> Iterator[list[ApiProcess]]:
    """`count` API processes on the same topic and keys file, all ready."""
    processes: list[ApiProcess] = []
    try:
        processes = [ApiProcess(settings) for _ in range(count)]
        for p in processes:
            p.wait_ready()
        yield processes
    finally:
        for p in processes:
            p.stop()
