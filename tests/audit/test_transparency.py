"""The transparency report and the read audit through the real API, gateway and broker."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from crisis.audit.log import records
from crisis.bus.adapters import open_bus
from crisis.cli import main
from crisis.config import Settings
from crisis.domain.reads import AuditReads
from tests.api.conftest import Actors
from tests.conftest import Stack
from tests.gateway.conftest import client, events, recv

pytestmark = pytest.mark.kafka

NOW = datetime.now(UTC)
PERIOD = {"from": (NOW - timedelta(hours=1)).isoformat(), "to": (NOW + timedelta(hours=1)).isoformat()}


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    result: Settings = make_settings(audit_reads_interval_s=0.2)
    return result


async def _history(actors: Actors) -> None:
    """Two live crises and one exercise; three indicators; answers, a dispute, and some reads."""
    cid = (await actors.crisis(level=2))["id"]
    await actors.crisis(status="monitoring", level=None, criteria=[])
    await actors.crisis(mode="exercise")  # not counted: exercise traffic never mixes with live figures
    items = [
        {"kind": "sha256", "value": "a" * 64},
        {"kind": "sha256", "value": "b" * 64},
        {"kind": "url", "value": "https://video.example/v/1"},
    ]
    shared = await actors.share(cid, items)
    ids = [i["indicator_id"] for i in shared.json()["items"]]
    for indicator, outcome in ((ids[0], "received"), (ids[0], "removed"), (ids[1], "disagree")):
        body = {"indicator_id": indicator, "outcome": outcome}
        r = await actors.call("POST", f"/v1/crises/{cid}/actions", "provider", json=body)
        assert r.status_code == 201, r.text
    assert (await actors.call("GET", f"/v1/crises/{cid}/indicators", "authority")).status_code == 200
    assert (await actors.call("GET", f"/v1/crises/{cid}/stix", "provider")).status_code == 200


async def _report(actors: Actors, **extra: str) -> httpx.Response:
    return await actors.call("GET", "/v1/transparency", "coordinator", params={**PERIOD, **extra})


async def test_the_report_counts_crises_indicators_providers_disputes_and_reads(actors: Actors) -> None:
    await _history(actors)
    report: dict[str, Any] = {}
    for _ in range(100):  # the read audit is written every 0.2 s
        report = (await _report(actors)).json()
        if {(r["org"], r["kind"]) for r in report["reads"]} >= {
            ("bka", "indicators"),
            ("vidshare", "export"),
        }:
            break
        await asyncio.sleep(0.1)
    assert report["tlp"] == "clear"
    assert report["crises"] == 2 and report["crises_by_level"] == {"2": 1, "not activated": 1}
    assert report["indicators"] == 3 and report["indicators_by_kind"] == {"sha256": 2, "url": 1}
    [provider] = report["providers"]
    assert provider["org"] == "vidshare" and (provider["referrals"], provider["removed"]) == (2, 1)
    assert provider["removal_rate"] == 0.5
    assert provider["median_receipt_s"] is not None and provider["median_action_s"] is not None
    assert report["disputes"] == {"open": 1, "confirmed": 0, "retracted": 0}
    assert report["erasures"] == 0
    reads = {(r["org"], r["kind"]): r["count"] for r in report["reads"]}
    assert reads[("bka", "indicators")] == 1 and reads[("vidshare", "export")] == 1
    # Nothing about values or free text: figures only.
    assert "video.example" not in json.dumps(report)


async def test_markdown_and_html_renderings_and_who_may_read_them(actors: Actors) -> None:
    await _history(actors)
    md = await _report(actors, format="md")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert "**TLP:CLEAR**" in md.text and "| vidshare | 2 | 1 | 50% |" in md.text
    html = await _report(actors, format="html")
    assert html.status_code == 200 and html.text.count("<svg") == 3 and "TLP:CLEAR" in html.text
    for role in ("provider", "authority", "observer"):
        denied = await actors.call("GET", "/v1/transparency", role, params=PERIOD)
        assert denied.status_code == 403, role
    backwards = await actors.call(
        "GET", "/v1/transparency", "coordinator", params={"from": PERIOD["to"], "to": PERIOD["from"]}
    )
    assert backwards.status_code == 422
    naive = await actors.call(
        "GET", "/v1/transparency", "coordinator", params={"from": "2026-01-01T00:00", "to": PERIOD["to"]}
    )
    assert naive.status_code == 422 and naive.json()["errors"]
    # A time that exists with its offset but in no UTC year: a field error, never a 500.
    params = {"from": "0001-01-01T00:00:00+18:00", "to": "0001-01-01T00:00:00Z"}
    nowhere = await actors.call("GET", "/v1/transparency", "coordinator", params=params)
    assert nowhere.status_code == 422 and nowhere.json()["errors"][0]["field"] == "query.from"


async def test_the_transparency_command_prints_the_report(
    actors: Actors, capsys: pytest.CaptureFixture[str]
) -> None:
    await _history(actors)
    argv = ["transparency", "--from", PERIOD["from"], "--to", PERIOD["to"], "--format", "json"]
    argv += ["--api", actors.stack.api_url, "--key", actors.key("coordinator")]
    assert await asyncio.to_thread(main, argv) == 0
    # The last line: the stack under test logs to the same stdout.
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["indicators"] == 3 and report["tlp"] == "clear"


async def test_a_stream_subscription_is_recorded_with_its_filters_and_cursors(
    full_stack: Stack, settings: Settings
) -> None:
    s = full_stack
    key = s.add_key("vidshare", "provider")
    hub = s.add_key("hub", "coordinator")
    async with httpx.AsyncClient(base_url=s.api_url, timeout=30) as http:
        body = {"title": "Attack", "status": "activated", "level": 1, "criteria": ["viral_spread"]}
        cid = (await http.post("/v1/crises", json=body, headers={"Authorization": f"Bearer {hub}"})).json()[
            "id"
        ]
        async with client(s.ws_url, key, type="indicator.shared") as ws:
            hello = await recv(ws)
            items = [{"kind": "md5", "value": f"{n:032x}"} for n in range(1, 21)]
            shared = await http.post(
                f"/v1/crises/{cid}/indicators",
                json={"indicators": items},
                headers={"Authorization": f"Bearer {hub}"},
            )
            assert shared.status_code == 200, shared.text
            got = await events(ws, 20)
    last = got[-1]["cursor"]
    found: list[AuditReads] = []
    for _ in range(100):
        async with open_bus(settings) as bus:
            found = [
                AuditReads.model_validate(r.envelope.data)
                async for r in records(bus)
                if r.envelope.type == "audit.reads"
            ]
        if any(sub.closed_at for a in found for sub in a.subscriptions):
            break
        await asyncio.sleep(0.1)
    [sub] = {(x.org, x.opened_at): x for a in found for x in a.subscriptions if x.closed_at}.values()
    assert (sub.org, sub.key_id) == ("vidshare", s.keys.authenticate(key).key_id)  # type: ignore[union-attr]
    assert sub.filters["types"] == ["indicator.shared"] and sub.from_cursor is None
    assert sub.to_cursor == last and hello["type"] == "subscribed"
    # Twenty frames, a handful of periods: the audit is aggregated, never an event per frame.
    assert len(found) < 20
