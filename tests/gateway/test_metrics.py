"""The gateway's /metrics, /livez and /readyz on the stream's port, as Prometheus and Kubernetes read them."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from structlog.testing import capture_logs
from websockets.exceptions import InvalidStatus

from tests.conftest import Stack
from tests.gateway.conftest import OpenStack, client, events, indicators, open_crisis
from tests.support.prometheus import families, naming_errors

pytestmark = pytest.mark.kafka


def http_base(s: Stack) -> str:
    return s.ws_url.replace("ws://", "http://").removesuffix("/v1/stream")


async def scrape(s: Stack) -> dict[str, list[tuple[str, float]]]:
    """Each family's samples (name, value); the page must follow Prometheus' naming rules."""
    async with httpx.AsyncClient(base_url=http_base(s)) as http:
        r = await http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    found = families(r.text)
    assert naming_errors(found) == []
    return {name: [(x.name, x.value) for x in f.samples] for name, f in found.items()}


async def test_the_page_parses_and_follows_the_naming_rules(open_stack: OpenStack) -> None:
    async with open_stack() as s:
        key = s.add_key("hub", "coordinator")
        async with client(s.ws_url, key):
            page = await scrape(s)
    assert page["crisis_gateway_connections"] == [("crisis_gateway_connections", 1)]
    assert page["crisis_gateway_subscribers"] == [("crisis_gateway_subscribers", 1)]
    assert page["crisis_gateway_delivered"] == [("crisis_gateway_delivered_total", 0)]
    assert page["crisis_gateway_closed_slow"] == [("crisis_gateway_closed_slow_total", 0)]
    assert page["crisis_ledger_lag_events"] == [("crisis_ledger_lag_events", 0)]
    assert page["crisis_ledger_lag_seconds"] == [("crisis_ledger_lag_seconds", 0)]
    for name in ("process_cpu_seconds", "process_open_fds", "python_info"):
        assert name in page, name


async def test_delivery_latency_is_observed_once_per_event_not_per_connection(open_stack: OpenStack) -> None:
    async with open_stack() as s:
        key = s.add_key("hub", "coordinator")
        async with client(s.ws_url, key) as one, client(s.ws_url, key) as two:
            crisis = await open_crisis(s)
            await s.ledger.write(indicators([crisis], 3))
            for ws in (one, two):
                assert len(await events(ws, 4)) == 4
            page = await scrape(s)
    samples = dict(page["crisis_gateway_delivery_latency_seconds"])
    assert samples["crisis_gateway_delivery_latency_seconds_count"] == 4
    assert page["crisis_gateway_delivered"] == [("crisis_gateway_delivered_total", 8)]


async def test_livez_and_readyz(open_stack: OpenStack) -> None:
    async with open_stack() as s, httpx.AsyncClient(base_url=http_base(s)) as http:
        live, ready = await http.get("/livez"), await http.get("/readyz")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        assert (ready.status_code, ready.json()) == (200, {"status": "ok", "caught_up": True})
        # A fold that failed no longer feeds the stream: out of the load balancer, still alive.
        s.ledger.failed = RuntimeError("the reader failed")
        assert (await http.get("/readyz")).status_code == 503
        assert (await http.get("/livez")).status_code == 200
        s.ledger.failed = None


async def test_refused_keys_are_counted_and_logged_a_few_times_per_address(open_stack: OpenStack) -> None:
    async with open_stack() as s:
        with capture_logs() as logs:
            for _ in range(8):
                with pytest.raises(InvalidStatus):
                    async with client(s.ws_url, "cb_not_a_key"):
                        pass
            await asyncio.sleep(0)
        page = await scrape(s)
    assert page["crisis_gateway_auth_failures"][0] == ("crisis_gateway_auth_failures_total", 8)
    failed = [line for line in logs if line["event"] == "auth_failed"]
    assert len(failed) == 5
    assert {line["client"] for line in failed} == {"127.0.0.1"}
    assert all("cb_not_a_key" not in str(line) for line in logs)
