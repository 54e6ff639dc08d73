"""The web console is served by the API with a strict policy and tells the browser where the stream is."""

from __future__ import annotations

import httpx

from tests.conftest import Stack, every_adapter

pytestmark = every_adapter


async def test_console_page_and_its_stream_address(api_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=api_stack.api_url) as http:
        page = await http.get("/")
        config = await http.get("/console/config.json")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert '"auth", token' in page.text  # the browser path: a token message first, never a URL parameter
    port = api_stack.settings.gateway_port
    assert config.json() == {"stream_url": f"ws://127.0.0.1:{port}/v1/stream"}
