"""A write the broker did not acknowledge never gets a success."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from crisis.broker import EmbeddedBroker
from crisis.config import Settings
from crisis.domain.enums import Role
from crisis.runtime import stack

pytestmark = pytest.mark.kafka


async def test_declare_gets_503_not_201_when_the_broker_is_gone(tmp_path: Path) -> None:
    async with EmbeddedBroker() as broker:
        settings = Settings(
            kafka_bootstrap=broker.bootstrap,
            kafka_idempotence=False,
            kafka_topic="t",
            api_port=0,
            keys_file=tmp_path / "keys.json",
            publish_timeout_s=3,
            kafka_request_timeout_ms=1000,
        )
        async with stack(settings, gateway=False) as running:
            _, key = running.keys.add("hub", Role.COORDINATOR)
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=running.api_url, timeout=30) as http:
                ok = await http.post("/v1/crises", json={"title": "before"}, headers=headers)
                assert ok.status_code == 201
                broker.kill()
                r = await http.post("/v1/crises", json={"title": "after"}, headers=headers)
                assert r.status_code == 503, r.text
                assert r.headers["content-type"] == "application/problem+json"
                problem = r.json()
                assert problem["code"] in ("broker_unavailable", "outcome_unknown")
                assert len(problem["event_ids"]) == 1
                ready = await http.get("/readyz")
                assert ready.status_code == 503
