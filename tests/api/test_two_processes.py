"""Two API processes on one broker: conflicting transitions at the same moment, exactly one wins."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from crisis.config import Settings
from crisis.domain.enums import Role
from crisis.keys import KeyStore
from tests.api.conftest import api_processes, auth

pytestmark = pytest.mark.kafka

ROUNDS = 10


async def _version_everywhere(http: httpx.AsyncClient, urls: list[str], crisis_id: str, version: int) -> None:
    """Wait until every process has folded the crisis up to `version`."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        # A process that has not folded the crisis yet answers 404: it is behind, like an older version.
        seen = [(await http.get(f"{u}/v1/crises/{crisis_id}")).json().get("version") for u in urls]
        if all(v == version for v in seen):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"processes did not converge on version {version}: {seen}")


async def test_conflicting_transitions_on_two_processes_exactly_one_wins(settings: Settings) -> None:
    _, key = KeyStore(settings.keys_file).add("hub", Role.COORDINATOR)
    with api_processes(settings, 2) as processes:
        urls = [p.url for p in processes]
        async with httpx.AsyncClient(headers=auth(key), timeout=30) as http:
            body = {"title": "Attack", "status": "activated", "level": 1, "criteria": ["viral_spread"]}
            crisis = (await http.post(f"{urls[0]}/v1/crises", json=body)).json()
            level, version = 1, 1
            for round_ in range(ROUNDS):
                await _version_everywhere(http, urls, crisis["id"], version)
                # Each process is asked for a different level from the same version, at the same moment.
                wanted = [n for n in (1, 2, 3) if n != level]
                answers = await asyncio.gather(
                    *(
                        http.post(
                            f"{url}/v1/crises/{crisis['id']}/transitions",
                            json={"to": "activated", "level": target, "expected_version": version},
                        )
                        for url, target in zip(urls, wanted, strict=True)
                    )
                )
                statuses = sorted(a.status_code for a in answers)
                assert statuses == [200, 409], (round_, [a.text for a in answers])
                [winner] = [a.json() for a in answers if a.status_code == 200]
                [loser] = [a.json() for a in answers if a.status_code == 409]
                assert loser["code"] == "stale_version"
                assert winner["version"] == version + 1
                level, version = winner["level"], winner["version"]
            await _version_everywhere(http, urls, crisis["id"], ROUNDS + 1)
            states = [(await http.get(f"{u}/v1/crises/{crisis['id']}")).json() for u in urls]
            assert states[0] == states[1] and states[0]["level"] == level
