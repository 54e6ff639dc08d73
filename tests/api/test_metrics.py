"""The API's /metrics as Prometheus reads it: named by the rules, bounded labels, process and ledger lag."""

from __future__ import annotations

import uuid

import httpx
import pytest

from crisis.api.app import create_app
from tests.api.conftest import Actors
from tests.support.prometheus import families, labels, naming_errors

pytestmark = pytest.mark.kafka


async def scrape(http: httpx.AsyncClient) -> str:
    r = await http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


async def test_the_page_parses_and_follows_the_naming_rules(actors: Actors) -> None:
    crisis = await actors.crisis()
    await actors.share(crisis["id"], [{"kind": "md5", "value": "a" * 32}])
    await actors.http.get("/v1/crises")  # a refusal: counted too
    found = families(await scrape(actors.http))
    assert naming_errors(found) == []
    assert found["crisis_http_requests"].type == "counter"
    assert found["crisis_http_request_duration_seconds"].type == "histogram"
    assert found["crisis_events_published"].type == "counter"
    assert found["crisis_http_auth_failures"].type == "counter"
    # Process and runtime metrics, and how far this process's fold is behind the log.
    for name in (
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "python_info",
        "python_gc_collections",
    ):
        assert name in found, name
    assert found["crisis_ledger_lag_events"].type == "gauge"
    assert found["crisis_ledger_lag_seconds"].type == "gauge"
    [caught_up] = found["crisis_ledger_caught_up"].samples
    assert caught_up.value == 1


async def test_invented_methods_and_paths_add_no_series(actors: Actors) -> None:
    async def series() -> int:
        return len(families(await scrape(actors.http))["crisis_http_requests"].samples)

    async def anonymous_requests() -> None:
        await actors.http.request(f"X{uuid.uuid4().hex[:8].upper()}", f"/nowhere/{uuid.uuid4()}")
        await actors.http.request("PROPFIND", f"/v1/crises/{uuid.uuid4()}")
        await actors.http.get(f"/nowhere/{uuid.uuid4()}")
        await actors.http.get(f"/v1/crises/{uuid.uuid4()}", headers={"Authorization": "Bearer nope"})

    await anonymous_requests()
    await scrape(actors.http)  # the page's own series exists from the first scrape on
    before = await series()
    for _ in range(5):
        await anonymous_requests()
    assert await series() == before
    requests = families(await scrape(actors.http))["crisis_http_requests"]
    assert labels(requests, "method") == {"GET", "other"}
    assert labels(requests, "route") == {"unmatched", "/v1/crises/{crisis_id}", "/metrics"}


async def test_auth_failures_are_counted(actors: Actors) -> None:
    def failures(text: str) -> float:
        [sample] = [
            s for s in families(text)["crisis_http_auth_failures"].samples if s.name.endswith("_total")
        ]
        return sample.value

    before = failures(await scrape(actors.http))
    await actors.http.get("/v1/crises")
    await actors.http.get("/v1/crises", headers={"Authorization": "Basic abc"})
    await actors.http.get("/v1/crises", headers={"Authorization": "Bearer cb_unknown"})
    assert failures(await scrape(actors.http)) == before + 3


async def test_several_apps_live_in_one_process(actors: Actors) -> None:
    """Each app has its own registry: a second one (as in `crisis up` or a test) registers nothing twice."""
    s = actors.stack
    first = create_app(s.settings, s.ledger, s.keys)
    second = create_app(s.settings, s.ledger, s.keys)
    assert first.state.metrics.registry is not second.state.metrics.registry
