"""The one-hour clock, shortened to two seconds, with two API processes on one broker: a silent provider
gets exactly one overdue event, a prompt one none, and the report counts the silent one as due."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from crisis.bus.adapters import open_bus
from crisis.config import Settings
from crisis.domain.enums import EventType, Role
from crisis.keys import KeyStore
from tests.api.conftest import api_processes, auth

pytestmark = pytest.mark.kafka


async def _overdue_in_log(settings: Settings) -> list[Any]:
    """Every `clock.overdue` record in the topic, repeats included."""
    found = []
    async with open_bus(settings) as bus, bus.reader() as reader:
        while not reader.caught_up():
            for item in await reader.next_batch(0.2):
                if item.envelope.type is EventType.CLOCK_OVERDUE:
                    found.append(item.envelope)
    return found


async def _report(http: httpx.AsyncClient, url: str, crisis_id: str, key: str) -> dict[str, Any]:
    r = await http.get(f"{url}/v1/crises/{crisis_id}/report", headers=auth(key))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_a_silent_provider_gets_exactly_one_overdue_event_with_two_api_processes(
    settings: Settings,
) -> None:
    keys = KeyStore(settings.keys_file)
    hub = keys.add("hub", Role.COORDINATOR)[1]
    bka = keys.add("bka", Role.AUTHORITY)[1]
    prompt = keys.add("prompt", Role.PROVIDER)[1]
    keys.add("silent", Role.PROVIDER)
    with api_processes(settings, 2) as processes:
        urls = [p.url for p in processes]
        async with httpx.AsyncClient(timeout=30) as http:
            body = {
                "title": "Attack",
                "status": "activated",
                "level": 1,
                "criteria": ["viral_spread"],
                "receipt_deadline_s": 2,
            }
            r = await http.post(f"{urls[0]}/v1/crises", json=body, headers=auth(hub))
            assert r.status_code == 201, r.text
            crisis = r.json()
            # No roster named: every organisation holding a provider key is expected.
            assert crisis["roster"] == ["prompt", "silent"]
            assert (crisis["receipt_deadline_s"], crisis["action_deadline_s"]) == (2, 3600)
            # Each process folds the log on its own: the second one knows the crisis once it has read it.
            for _ in range(100):
                seen = await http.get(f"{urls[1]}/v1/crises/{crisis['id']}", headers=auth(bka))
                if seen.status_code != 404:
                    break
                await asyncio.sleep(0.1)
            assert seen.status_code == 200, seen.text
            share = {"indicators": [{"kind": "md5", "value": "a" * 32}]}
            r = await http.post(
                f"{urls[1]}/v1/crises/{crisis['id']}/indicators", json=share, headers=auth(bka)
            )
            assert r.status_code == 200, r.text
            [item] = r.json()["items"]
            ack = {"indicator_id": item["indicator_id"], "outcome": "received"}
            # The other process knows the indicator once it has folded the share (and read its data key).
            for _ in range(50):
                r = await http.post(
                    f"{urls[0]}/v1/crises/{crisis['id']}/actions", json=ack, headers=auth(prompt)
                )
                if r.status_code != 404:
                    break
                await asyncio.sleep(0.1)
            assert r.status_code in (200, 201), r.text

            deadline = time.monotonic() + 15
            timeline: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                timeline = (await _report(http, urls[1], crisis["id"], hub))["timeline"]
                if any(t["type"] == "clock.overdue" for t in timeline):
                    break
                await asyncio.sleep(0.2)
            # Both clocks have had three more ticks to write a second event, if they were going to.
            await asyncio.sleep(3)
            reports = [await _report(http, u, crisis["id"], hub) for u in urls]

    overdue = await _overdue_in_log(settings)
    assert len({e.id for e in overdue}) == 1, overdue
    event = overdue[0]
    assert event.data["provider_org"] == "silent"
    assert event.data["deadline"] == "receipt"
    due = datetime.fromisoformat(event.data["due_at"])
    assert 0 <= (event.time - due).total_seconds() <= 5
    for report in reports:
        assert [t["summary"] for t in report["timeline"] if t["type"] == "clock.overdue"] == [
            f"silent: receipt overdue for {item['indicator_id']}"
        ]
        lines = {p["org"]: p for p in report["providers"]}
        assert set(lines) == {"prompt", "silent"}
        silent = lines["silent"]
        assert silent["expected"] and silent["indicators"] == 1 and silent["received"] == 0
        assert (silent["receipts_due"], silent["receipts_missed"]) == (1, 1)
        assert (lines["prompt"]["receipts_due"], lines["prompt"]["receipts_missed"]) == (1, 0)
