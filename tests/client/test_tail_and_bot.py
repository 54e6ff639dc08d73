"""`crisis tail` and examples/provider_bot.py against a running stack."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from crisis.cli import tail
from crisis.client import Message
from crisis.domain.enums import Tlp
from tests.conftest import Stack
from tests.gateway.conftest import open_crisis
from tests.gateway.events import action_reported, crisis_opened, indicator_shared

ROOT = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> argparse.Namespace:
    root = argparse.ArgumentParser()
    tail.register(root.add_subparsers(dest="command"))
    return root.parse_args(["tail", *argv])


def test_options() -> None:
    args = parse(
        "--key", "k", "--crisis", "a,b", "--crisis", "c", "--type", "indicator.shared", "--mode", "both"
    )
    assert args.crisis == ["a", "b", "c"] and args.type == ["indicator.shared"] and args.mode == "both"
    assert args.url is None and args.kind is None and not args.json


def test_lines_are_readable() -> None:
    crisis = crisis_opened(tlp=Tlp.GREEN, title="Attack in X")
    shared = indicator_shared(crisis, "bka")
    lines = [
        tail.describe(Message(e.type.value, {**e.model_dump(mode="json"), "cursor": "C"}))
        for e in (crisis, shared, action_reported(shared, "vidshare", "removed"))
    ]
    assert '"Attack in X" monitoring v1' in lines[0] and "TLP:GREEN" in lines[0]
    assert f"sha256 {shared.data['canonical'][:60]}" in lines[1] and "by bka" in lines[1]
    assert "vidshare removed" in lines[2]
    state = tail.describe(Message("state", {"type": "state", "crisis": {"id": "abc", "title": "T"}}))
    assert "state" in state and '"T"' in state
    gap = tail.describe(Message("gap", {"type": "gap", "reason": "retention", "missing": []}))
    assert "GAP" in gap and "retention" in gap


@pytest.mark.kafka
async def test_tail_prints_the_stream(full_stack: Stack) -> None:
    s = full_stack
    key = s.add_key("vidshare", "provider")
    crisis = await open_crisis(s, title="Tail me")
    await s.ledger.write([indicator := indicator_shared(crisis)])
    out = io.StringIO()
    args = parse("--url", s.ws_url, "--key", key, "--json", "--count", "1")
    # The state comes first; the indicator shared before the subscription is in it, not an event.
    task = asyncio.create_task(tail.tail(args, out))
    await asyncio.sleep(0.3)
    await s.ledger.write([later := indicator_shared(crisis)])
    assert await asyncio.wait_for(task, 10) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["type"] == "state" and lines[0]["crisis"]["title"] == "Tail me"
    assert lines[-1]["id"] == later.id and indicator.id not in {line.get("id") for line in lines}


def load_bot() -> ModuleType:
    spec = importlib.util.spec_from_file_location("provider_bot", ROOT / "examples" / "provider_bot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.kafka
async def test_the_provider_bot_acknowledges_then_reports_an_outcome(
    full_stack: Stack, tmp_path: Path
) -> None:
    s = full_stack
    bot = load_bot()
    coordinator = s.add_key("hub", "coordinator")
    authority = s.add_key("bka", "authority")
    provider = s.add_key("vidshare", "provider")
    async with httpx.AsyncClient(base_url=s.api_url, timeout=15) as http:
        r = await http.post(
            "/v1/crises",
            json={
                "title": "Attack",
                "status": "activated",
                "level": 2,
                "criteria": ["ongoing_violent_event"],
            },
            headers={"Authorization": f"Bearer {coordinator}"},
        )
        assert r.status_code == 201, r.text
        crisis_id = r.json()["id"]
        state = tmp_path / "cursor"
        running = asyncio.create_task(bot.run(s.ws_url, s.api_url, provider, state=state, limit=2))
        await asyncio.sleep(0.3)  # subscribed
        items = [
            {"kind": "sha256", "value": "ab" * 32},
            {"kind": "url", "value": "https://v.example/Watch?v=1"},
        ]
        r = await http.post(
            f"/v1/crises/{crisis_id}/indicators",
            json={"indicators": items},
            headers={"Authorization": f"Bearer {authority}"},
        )
        assert r.status_code == 200, r.text
        assert await asyncio.wait_for(running, 15) == 2
    actions = [(d.outcome.value, d.provider_org) for _, d in s.ledger.book.crises[crisis_id].actions]
    assert sorted(actions) == sorted(
        [("received", "vidshare"), ("blocked", "vidshare"), ("received", "vidshare"), ("removed", "vidshare")]
    )
    assert state.read_text()  # the cursor to continue from after a restart


@pytest.mark.kafka
async def test_a_bot_started_mid_crisis_handles_every_earlier_indicator(
    full_stack: Stack, tmp_path: Path
) -> None:
    s = full_stack
    bot = load_bot()
    coordinator = s.add_key("hub", "coordinator")
    authority = s.add_key("bka", "authority")
    provider = s.add_key("vidshare", "provider")
    async with httpx.AsyncClient(base_url=s.api_url, timeout=15) as http:
        declare = {"title": "Attack", "status": "activated", "level": 1, "criteria": ["viral_spread"]}
        r = await http.post("/v1/crises", json=declare, headers={"Authorization": f"Bearer {coordinator}"})
        assert r.status_code == 201, r.text
        crisis_id = r.json()["id"]
        items = [{"kind": "md5", "value": f"{n:x}" * 32} for n in range(4)]
        r = await http.post(
            f"/v1/crises/{crisis_id}/indicators",
            json={"indicators": items},
            headers={"Authorization": f"Bearer {authority}"},
        )
        assert r.status_code == 200, r.text
        shared = {item["indicator_id"] for item in r.json()["items"]}
        # No saved cursor: the bot starts with the crisis's history, then stays live.
        handled = await asyncio.wait_for(bot.run(s.ws_url, s.api_url, provider, limit=4), 15)
    assert handled == 4
    acted = {d.indicator_id for _, d in s.ledger.book.crises[crisis_id].actions if d.outcome == "blocked"}
    assert acted == shared


@pytest.mark.kafka
async def test_the_provider_bot_reinstates_an_indicator_whose_dispute_is_retracted(full_stack: Stack) -> None:
    s = full_stack
    bot = load_bot()
    keys = {org: s.add_key(org, role) for org, role in [("hub", "coordinator"), ("bka", "authority")]}
    keys |= {org: s.add_key(org, "provider") for org in ("vidshare", "tubeco")}

    def auth(org: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[org]}"}

    async with httpx.AsyncClient(base_url=s.api_url, timeout=15) as http:
        declare = {"title": "Attack", "status": "activated", "level": 1, "criteria": ["viral_spread"]}
        r = await http.post("/v1/crises", json=declare, headers=auth("hub"))
        assert r.status_code == 201, r.text
        crisis_id = r.json()["id"]
        running = asyncio.create_task(bot.run(s.ws_url, s.api_url, keys["vidshare"], limit=2))
        item = {"kind": "url", "value": "https://news.example/report-on-the-attack"}
        r = await http.post(
            f"/v1/crises/{crisis_id}/indicators", json={"indicators": [item]}, headers=auth("bka")
        )
        assert r.status_code == 200, r.text
        indicator_id = r.json()["items"][0]["indicator_id"]
        disagree = {"indicator_id": indicator_id, "outcome": "disagree", "note": "a news report"}
        r = await http.post(f"/v1/crises/{crisis_id}/actions", json=disagree, headers=auth("tubeco"))
        assert r.status_code == 201, r.text
        r = await http.get(f"/v1/crises/{crisis_id}/disputes", headers=auth("hub"))
        [dispute] = r.json()["items"]
        # The bot must have removed the content before the retraction asks it to reinstate it.
        async with asyncio.timeout(10):
            while not any(d.outcome == "removed" for _, d in s.ledger.book.crises[crisis_id].actions):
                await asyncio.sleep(0.05)
        path = f"/v1/crises/{crisis_id}/disputes/{dispute['id']}/resolution"
        r = await http.post(path, json={"outcome": "retracted", "reason": "journalism"}, headers=auth("hub"))
        assert r.status_code == 200, r.text
        assert await asyncio.wait_for(running, 15) == 2
    outcomes = [
        d.outcome.value for _, d in s.ledger.book.crises[crisis_id].actions if d.provider_org == "vidshare"
    ]
    assert outcomes == ["received", "removed", "reinstated"]
