"""Webhook deliveries on /metrics: what the store holds by state, and attempts by outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.api.conftest import Actors
from tests.support.prometheus import families, naming_errors
from tests.webhooks.receiver import receiving
from tests.webhooks.test_delivery import SHA, delivery, fast, register, running

pytestmark = pytest.mark.kafka
NONE = {"pending": 0, "delivered": 0, "dead": 0}


@pytest_asyncio.fixture
async def hub(make_settings: Any, tmp_path: Path) -> AsyncIterator[Actors]:
    async with running(fast(make_settings, tmp_path)) as actors:
        yield actors


def samples(text: str, family: str, label: str) -> dict[str, float]:
    return {s.labels[label]: s.value for s in families(text)[family].samples}


async def scrape(actors: Actors) -> str:
    answer = await actors.http.get("/metrics")
    assert answer.status_code == 200
    return answer.text


async def test_deliveries_failures_and_dead_letters_on_metrics(hub: Actors) -> None:
    actors = hub
    page = await scrape(actors)  # no webhook registered yet: zeros, and no store file made by a scrape
    assert samples(page, "crisis_webhook_deliveries", "state") == NONE
    assert not actors.stack.settings.webhooks_file.exists()

    async with receiving(failures=100) as receiver:
        hook = await register(actors, receiver)
        crisis = await actors.crisis()
        await actors.shared_id(crisis["id"], {"kind": "sha256", "value": SHA})
        [first, *_] = await receiver.wait_for(4)
        event_id = first.headers["webhook-id"]
        await delivery(actors, hook["id"], event_id, "provider", "dead")
        page = await scrape(actors)
        assert samples(page, "crisis_webhook_deliveries", "state") == {**NONE, "dead": 1}
        attempts: dict[str, Any] = samples(page, "crisis_webhook_attempts", "outcome")
        assert attempts == {"delivered": 0, "http_error": 4, "network_error": 0}
        assert naming_errors(families(page)) == []

        receiver.failures = 0
        path = f"/v1/webhooks/{hook['id']}/deliveries/{event_id}/redeliver"
        assert (await actors.call("POST", path, "coordinator")).status_code == 202
        await delivery(actors, hook["id"], event_id, "coordinator", "delivered")
        page = await scrape(actors)
        assert samples(page, "crisis_webhook_deliveries", "state") == {**NONE, "delivered": 1}
        assert samples(page, "crisis_webhook_attempts", "outcome")["delivered"] == 1
