"""A gateway-only process's read audit reaches the log through the API (POST /v1/audit/reads), never through
Kafka: real sockets, a gateway-only stack beside an API stack on the embedded broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from crisis.audit.log import records
from crisis.audit.reads import LINES, ReadAudit, Sent, event_id, flush
from crisis.broker import free_port
from crisis.bus.adapters import open_bus
from crisis.config import Settings
from crisis.domain.enums import Role
from crisis.domain.reads import AuditReads, ReadKind, ReadTotals
from crisis.runtime import Running, StartupError, stack
from tests.conftest import Stack
from tests.gateway.conftest import client, recv

TOKEN = "audit-token-7c1e9b"
NOW = datetime.now(UTC)
PERIOD = {"from": (NOW - timedelta(hours=1)).isoformat(), "to": (NOW + timedelta(hours=1)).isoformat()}


@asynccontextmanager
async def api_process(settings: Settings) -> AsyncIterator[Stack]:
    async with stack(settings, gateway=False) as running:
        running.__class__ = Stack
        yield running  # type: ignore[misc]


@asynccontextmanager
async def gateway_process(settings: Settings, api_url: str, token: str | None) -> AsyncIterator[Running]:
    update: dict[str, Any] = {"audit_api_url": api_url, "audit_token": token and SecretStr(token)}
    async with stack(settings.model_copy(update=update), api=False) as running:
        yield running


async def subscribe(ws_url: str, key: str) -> None:
    """One stream subscription, opened and closed."""
    async with client(ws_url, key, type="indicator.shared") as ws:
        assert (await recv(ws))["type"] == "subscribed"


async def logged_streams(settings: Settings, org: str) -> list[AuditReads]:
    """The `audit.reads` events in the log that hold a closed subscription of `org`."""
    async with open_bus(settings) as bus:
        found = [
            AuditReads.model_validate(r.envelope.data)
            async for r in records(bus)
            if r.envelope.type == "audit.reads"
        ]
    return [a for a in found if any(s.org == org and s.closed_at for s in a.subscriptions)]


async def eventually_logged(settings: Settings, org: str, timeout: float = 20.0) -> list[AuditReads]:
    async with asyncio.timeout(timeout):
        while not (found := await logged_streams(settings, org)):
            await asyncio.sleep(0.2)
    return found


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    result: Settings = make_settings(audit_reads_interval_s=0.2, audit_token=SecretStr(TOKEN))
    return result


@pytest.mark.kafka
async def test_a_subscription_on_a_gateway_only_process_is_written_by_the_api(settings: Settings) -> None:
    async with api_process(settings) as api:
        key, hub = api.add_key("vidshare", "provider"), api.add_key("hub", "coordinator")
        async with gateway_process(settings, api.api_url, TOKEN) as gw:
            await subscribe(gw.ws_url, key)
            [audit] = await eventually_logged(settings, "vidshare")
        # The gateway's process is not the API's: its audit came over HTTP, and the report counts it.
        assert [s.key_id for s in audit.subscriptions] == [api.keys.authenticate(key).key_id]  # type: ignore[union-attr]
        async with httpx.AsyncClient(base_url=api.api_url, timeout=10) as http:
            report = await http.get(
                "/v1/transparency", params=PERIOD, headers={"Authorization": f"Bearer {hub}"}
            )
        assert {"org": "vidshare", "kind": "stream", "count": 1} in report.json()["reads"]


@pytest.mark.kafka
async def test_a_wrong_token_is_refused_and_nothing_reaches_the_log(settings: Settings) -> None:
    async with api_process(settings) as api:
        key = api.add_key("vidshare", "provider")
        with capture_logs() as logs:
            async with gateway_process(settings, api.api_url, "not-the-token") as gw:
                await subscribe(gw.ws_url, key)
                await asyncio.sleep(1.5)  # several periods, each refused
        assert await logged_streams(settings, "vidshare") == []
        refused = [e for e in logs if e["event"] == "audit_reads_not_forwarded"]
        # Logged once, however many periods failed; the token itself never.
        assert len(refused) == 1 and refused[0]["status"] == 401
        assert "not-the-token" not in repr(logs) and TOKEN not in repr(logs)


@pytest.mark.kafka
async def test_counts_wait_for_an_api_that_is_down_and_reach_it_once_it_is_back(
    settings: Settings, make_settings: Any
) -> None:
    port = free_port()
    async with gateway_process(settings, f"http://127.0.0.1:{port}", TOKEN) as gw:
        _, key = gw.keys.add("vidshare", Role.PROVIDER)  # the keys file both processes read
        await subscribe(gw.ws_url, key)
        await asyncio.sleep(1.0)  # periods sent to no one
        assert await logged_streams(settings, "vidshare") == []
        async with api_process(settings.model_copy(update={"api_port": port})):
            [audit] = await eventually_logged(settings, "vidshare")
    assert audit.subscriptions[0].org == "vidshare"


@pytest.mark.kafka
async def test_the_route_needs_the_token_validates_and_writes_a_period_once(settings: Settings) -> None:
    period = {
        "process": "gw-0001",
        "period_from": (NOW - timedelta(minutes=1)).isoformat(),
        "period_to": NOW.isoformat(),
        "counts": [{"org": "press", "key_id": "k1", "crisis_id": "", "kind": "stream", "count": 3}],
    }
    async with api_process(settings) as api, httpx.AsyncClient(base_url=api.api_url, timeout=10) as http:
        api_key = api.add_key("hub", "coordinator")
        for headers in ({}, {"Authorization": f"Bearer {api_key}"}, {"Authorization": "Bearer wrong"}):
            r = await http.post("/v1/audit/reads", json=period, headers=headers)
            assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        token = {"Authorization": f"Bearer {TOKEN}"}
        bad = {**period, "counts": [{**period["counts"][0], "count": 0}]}  # type: ignore[dict-item]
        r = await http.post("/v1/audit/reads", json=bad, headers=token)
        assert r.status_code == 422 and r.json()["errors"][0]["field"].endswith("count")
        first = await http.post("/v1/audit/reads", json=period, headers=token)
        again = await http.post("/v1/audit/reads", json=period, headers=token)
        assert first.status_code == again.status_code == 201, first.text
        assert first.json()["event_id"] == again.json()["event_id"]
    async with open_bus(settings) as bus:
        written = [r async for r in records(bus) if r.envelope.type == "audit.reads"]
    assert [AuditReads.model_validate(r.envelope.data).process for r in written].count("gw-0001") == 1


async def test_a_production_gateway_without_the_token_refuses_to_start() -> None:
    settings = Settings(
        environment="production",
        bus_url="kafka://127.0.0.1:1",
        kafka_replication=3,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="crisis-gateway",
        kafka_sasl_password=SecretStr("x"),
    )
    with pytest.raises(StartupError, match="CRISIS_AUDIT_TOKEN"):
        async with stack(settings, api=False):
            pass


@pytest.mark.kafka
async def test_a_gateway_without_the_token_says_so_and_writes_nothing(make_settings: Any) -> None:
    settings = make_settings(audit_reads_interval_s=0.2)
    with capture_logs() as logs:
        async with stack(settings, api=False) as gw:
            _, key = gw.keys.add("vidshare", Role.PROVIDER)
            await subscribe(gw.ws_url, key)
            await asyncio.sleep(0.6)
    assert any(e["event"] == "audit_reads_kept_in_memory" for e in logs)
    assert await logged_streams(settings, "vidshare") == []


def test_a_busy_period_goes_out_over_the_next_ones_and_nothing_is_lost() -> None:
    reads = ReadAudit()
    for n in range(LINES + 1):
        reads.subscribed(n, "press", "k1", {}, None, lambda: "")
        reads.unsubscribed(n)
        reads.count("press", "k1", f"crisis-{n}", ReadKind.INDICATORS)
    first = reads.pending()
    assert first is not None and (len(first.counts), len(first.subscriptions)) == (LINES, LINES)
    reads.written(first)
    rest = reads.pending()
    assert rest is not None and (len(rest.counts), len(rest.subscriptions)) == (1, 1)
    assert rest.counts[0].crisis_id == f"crisis-{LINES}"
    reads.written(rest)
    assert reads.pending() is None


async def test_a_send_cut_short_by_a_stop_goes_again_as_the_same_event_and_counts_once() -> None:
    """A process stopping while its period is in flight: the API may have written it already, so the last
    flush sends that very period again (one event id, taken once by the fold), never a new period that
    would count the same subscription a second time."""
    reads = ReadAudit()
    reads.subscribed(1, "press", "k1", {}, None, lambda: "")
    reads.unsubscribed(1)
    sent: list[AuditReads] = []
    arrived = asyncio.Event()

    class SlowApi:
        async def send(self, data: AuditReads) -> Sent:
            sent.append(data)
            arrived.set()
            await asyncio.Event().wait()  # written by the API; the answer never comes back in time
            return Sent.WRITTEN

    class Api:
        async def send(self, data: AuditReads) -> Sent:
            sent.append(data)
            return Sent.WRITTEN

    periodic = asyncio.create_task(flush(SlowApi(), reads))
    await arrived.wait()
    periodic.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await periodic
    await flush(Api(), reads)  # the flush on the way out
    assert [event_id(d) for d in sent] == [event_id(sent[0])] * 2
    assert reads.pending() is None
    totals = ReadTotals()
    for data in {event_id(d): d for d in sent}.values():  # the fold takes an event id once
        totals.add(data)
    [line] = totals.lines(NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert (line.org, line.kind, line.count) == ("press", ReadKind.STREAM, 1)
