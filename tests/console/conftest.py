"""Console fixtures: a real stack on the test broker whose console a headless Chromium drives.

The console's stream goes through a relay the test can cut, to show what a duty officer sees when the network
drops. `CRISIS_CONSOLE_SCREENSHOTS=docs/console` saves each view's picture while the tests run.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from crisis.runtime import stack
from tests.conftest import Stack
from tests.console.cdp import Browser, Page, chromium_path
from tests.gateway.proxy import CuttableProxy


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if chromium_path() is None:
        skip = pytest.mark.skip(reason="chromium is not installed (.ci/run installs it from Debian packages)")
        for item in items:
            if item.get_closest_marker("browser") is not None:
                item.add_marker(skip)


class Relay(CuttableProxy):
    """The proxy, plus a switch: while `down`, every new connection is dropped as soon as it arrives."""

    down = False

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        await super()._relay(reader, writer)


@dataclass
class Console:
    stack: Stack
    relay: Relay
    browser: Browser
    http: httpx.AsyncClient
    coordinator: str
    screenshots: Path | None

    @property
    def url(self) -> str:
        return self.stack.api_url

    async def signed_in(self, key: str, hash_: str = "") -> Page:
        """A new tab, signed in with `key`, its stream live."""
        page = await self.browser.page()
        await page.goto(f"{self.url}/{hash_}")
        await page.type("#login-key", key)
        await page.click("#login-form button[type=submit]")
        await page.wait_for("document.getElementById('conn').dataset.state === 'live'")
        return page

    async def post(self, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code < 300, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def get(self, key: str, path: str) -> dict[str, Any]:
        answer = await self.http.get(path, headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def shot(self, page: Page, name: str) -> None:
        if self.screenshots is not None:
            await page.screenshot(self.screenshots / f"{name}.png")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest_asyncio.fixture
async def console(make_settings: Any) -> AsyncIterator[Console]:
    api_port, gateway_port = _free_port(), _free_port()
    async with Relay(gateway_port) as relay:
        settings = make_settings(
            api_port=api_port,
            gateway_port=gateway_port,
            public_stream_url=relay.url(),
            gateway_allowed_origins=[f"http://127.0.0.1:{api_port}"],
            rate_limit_per_s=1000,
        )
        async with stack(settings) as running, Browser() as browser:
            running.__class__ = Stack
            assert isinstance(running, Stack)
            shots = os.environ.get("CRISIS_CONSOLE_SCREENSHOTS")
            async with httpx.AsyncClient(base_url=running.api_url, timeout=10) as http:
                yield Console(
                    running,
                    relay,
                    browser,
                    http,
                    running.add_key("hub", "coordinator"),
                    Path(shots) if shots else None,
                )
