"""`crisis webhooks` against a real API, broker, deliverer and receiver (the CLI runs in a thread)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from crisis.cli import main
from crisis.cli.webhooks import STATES
from crisis.domain.webhooks import DeliveryState
from tests.api.conftest import Actors
from tests.webhooks.receiver import receiving
from tests.webhooks.test_delivery import SHA, delivery, fast, running

pytestmark = pytest.mark.kafka


@pytest_asyncio.fixture
async def hub(make_settings: Any, tmp_path: Path) -> AsyncIterator[Actors]:
    async with running(fast(make_settings, tmp_path)) as actors:
        yield actors


async def crisis(actors: Actors, capsys: pytest.CaptureFixture[str], role: str, *args: str) -> list[str]:
    """Run `crisis ...` with the role's key; its stdout lines (it must succeed)."""
    key = actors.key(role)
    code = await asyncio.to_thread(main, [*args, "--api", actors.stack.api_url, "--key", key])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out.splitlines()


async def test_add_list_dead_letters_redeliver_and_remove(
    hub: Actors, capsys: pytest.CaptureFixture[str]
) -> None:
    async with receiving(failures=100) as receiver:
        added = await crisis(
            hub, capsys, "provider", "webhooks", "add", receiver.url, "--type", "indicator.shared",
            "--description", "takedown queue",
        )  # fmt: skip
        hook_id, secret = added[0].split()[0], added[-1]
        assert secret.startswith("whsec_") and receiver.url in added[0]
        [listed] = await crisis(hub, capsys, "provider", "webhooks", "list")
        assert (
            listed.startswith(hook_id) and "types=indicator.shared" in listed and "takedown queue" in listed
        )

        c = await hub.crisis()
        await hub.shared_id(c["id"], {"kind": "sha256", "value": SHA})
        [first, *_] = await receiver.wait_for(4)
        event_id = first.headers["webhook-id"]
        await delivery(hub, hook_id, event_id, "provider", "dead")
        [dead] = await crisis(hub, capsys, "coordinator", "webhooks", "deliveries", "--state", "dead")
        assert dead.split()[:3] == [hook_id, event_id, "dead"]

        receiver.failures = 0
        await crisis(hub, capsys, "coordinator", "webhooks", "redeliver", hook_id, event_id)
        await delivery(hub, hook_id, event_id, "provider", "delivered")
        assert receiver.requests[-1].status == 204
        assert await crisis(hub, capsys, "coordinator", "webhooks", "deliveries", "--state", "dead") == []

        await crisis(hub, capsys, "provider", "webhooks", "remove", hook_id)
        assert await crisis(hub, capsys, "provider", "webhooks", "list") == []


async def test_a_refused_registration_names_the_field_and_exits_1(
    hub: Actors, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["webhooks", "add", "ftp://x.example", "--type", "indicator.shared"]
    code = await asyncio.to_thread(main, [*args, "--api", hub.stack.api_url, "--key", hub.key("provider")])
    err = capsys.readouterr().err
    assert code == 1
    assert [line for line in err.splitlines() if line.startswith("crisis: error: ")] == [
        "crisis: error: Unprocessable content (422): a webhook URL must be http(s)"
    ]
    assert "  url: a webhook URL must be http(s)" in err.splitlines()  # the field named


def test_the_state_choices_are_the_domain_s() -> None:
    assert tuple(s.value for s in DeliveryState) == STATES
