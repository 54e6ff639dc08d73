"""Each key has a request budget: a runaway client gets 429 with Retry-After; other keys are unaffected."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crisis.api.ratelimit import RateLimiter
from crisis.runtime import stack


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_the_sustained_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=3, clock=clock)
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k") == pytest.approx(0.1)
    assert limiter.take("other") == 0.0  # budgets are per key
    clock.now += 0.1
    assert limiter.take("k") == 0.0
    clock.now += 60
    assert [limiter.take("k") for _ in range(4)][-1] > 0  # refills to the burst, never beyond


@pytest.mark.kafka
async def test_over_budget_requests_get_429_with_retry_after(make_settings: Any) -> None:
    settings = make_settings(rate_limit_per_s=1, rate_limit_burst=3)
    async with stack(settings, gateway=False) as running:
        _, busy = running.keys.add("bot", "provider")  # type: ignore[arg-type]
        _, calm = running.keys.add("hub", "coordinator")  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=running.api_url) as http:
            codes = [
                (await http.get("/v1/crises", headers={"Authorization": f"Bearer {busy}"})).status_code
                for _ in range(4)
            ]
            assert codes == [200, 200, 200, 429]
            limited = await http.get("/v1/crises", headers={"Authorization": f"Bearer {busy}"})
            assert limited.headers["content-type"] == "application/problem+json"
            assert limited.json()["code"] == "rate_limited"
            assert int(limited.headers["retry-after"]) >= 1
            other = await http.get("/v1/crises", headers={"Authorization": f"Bearer {calm}"})
            assert other.status_code == 200
