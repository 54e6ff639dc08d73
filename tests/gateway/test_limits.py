"""One key cannot hold the gateway's connections hostage; operators can scrape the gateway."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from crisis.domain.enums import Role
from crisis.runtime import stack

pytestmark = pytest.mark.kafka


async def test_a_key_over_its_stream_limit_is_refused_and_others_are_not(make_settings: Any) -> None:
    async with stack(make_settings(gateway_max_streams_per_key=2), api=False) as running:
        _, busy = running.keys.add("bot", Role.PROVIDER)
        _, other = running.keys.add("hub", Role.COORDINATOR)
        bearer = {"Authorization": f"Bearer {busy}"}
        first = await websockets.connect(running.ws_url, additional_headers=bearer)
        second = await websockets.connect(running.ws_url, additional_headers=bearer)
        try:
            with pytest.raises(InvalidStatus) as refused:
                await websockets.connect(running.ws_url, additional_headers=bearer)
            assert refused.value.response.status_code == 429
            async with websockets.connect(
                running.ws_url, additional_headers={"Authorization": f"Bearer {other}"}
            ) as ws:
                assert '"subscribed"' in str(await ws.recv())
            await first.close()
            await first.wait_closed()
            for _ in range(50):  # the gateway frees the slot when it has seen the close
                try:
                    third = await websockets.connect(running.ws_url, additional_headers=bearer)
                    break
                except InvalidStatus:
                    await asyncio.sleep(0.02)
            else:
                pytest.fail("the slot was never freed")
            await third.close()
        finally:
            await second.close()
