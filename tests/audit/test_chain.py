"""The hash chain through the real API and broker: an untampered log verifies; altering, dropping and
reordering records is each found at the right first broken link; two racing API processes keep one chain."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from crisis.audit.log import records
from crisis.audit.verify import Record, verify
from crisis.bus.adapters import open_bus
from crisis.cli import main
from crisis.config import Settings
from crisis.domain.enums import Role
from crisis.domain.envelope import Envelope
from crisis.keys import KeyStore
from tests.api.conftest import Actors, api_processes, auth

pytestmark = pytest.mark.kafka


async def _read(settings: Settings) -> list[Record]:
    async with open_bus(settings) as bus:
        return [r async for r in records(bus)]


async def _history(actors: Actors) -> str:
    """A crisis with a share batch, a transition and an action: its id."""
    cid: str = (await actors.crisis())["id"]
    items = [{"kind": "sha256", "value": f"{n:064x}"} for n in range(1, 4)]
    shared = await actors.share(cid, items)
    assert shared.status_code == 200, shared.text
    first = shared.json()["items"][0]["indicator_id"]
    moved = await actors.call(
        "POST",
        f"/v1/crises/{cid}/transitions",
        "coordinator",
        json={"to": "activated", "level": 2, "expected_version": 1},
    )
    assert moved.status_code == 200, moved.text
    acted = await actors.call(
        "POST", f"/v1/crises/{cid}/actions", "provider", json={"indicator_id": first, "outcome": "removed"}
    )
    assert acted.status_code == 201, acted.text
    return cid


async def _tampered(make_settings: Any, envelopes: list[Envelope]) -> tuple[Settings, list[Record]]:
    """The envelopes written, in this order, into a fresh topic of the real broker, and read back."""
    copy: Settings = make_settings(kafka_partitions=1)
    async with open_bus(copy) as bus:
        await bus.publish(envelopes)
        return copy, [r async for r in records(bus)]


def _altered(events: list[Envelope]) -> list[Envelope]:
    events[2] = events[2].model_copy(update={"data": {**events[2].data, "note": "edited afterwards"}})
    return events


def _dropped(events: list[Envelope]) -> list[Envelope]:
    del events[2]
    return events


def _reordered(events: list[Envelope]) -> list[Envelope]:
    events[2], events[3] = events[3], events[2]
    return events


@pytest.mark.parametrize(
    ("tamper", "reason", "culprit"),
    [(_altered, "altered", 2), (_dropped, "unlinked", 3), (_reordered, "unlinked", 3)],
    ids=["altered", "dropped", "reordered"],
)
async def test_tampering_is_found_at_the_first_broken_link(
    actors: Actors,
    make_settings: Any,
    tamper: Callable[[list[Envelope]], list[Envelope]],
    reason: str,
    culprit: int,
) -> None:
    cid = await _history(actors)
    log = await _read(actors.stack.settings)
    assert verify(log).valid
    events = [r.envelope for r in log if r.envelope.subject == cid]
    assert len(events) == 6

    _, copy = await _tampered(make_settings, tamper(list(events)))
    verdict = verify(copy)
    [broken] = verdict.breaks
    # One partition in the copy: the offset is the position in the tampered list.
    at = next(i for i, r in enumerate(copy) if r.envelope.id == events[culprit].id)
    assert (broken.offset, broken.event_id) == (at, events[culprit].id)
    assert broken.reason.startswith(reason)
    if reason == "unlinked":
        # It links to the event that is missing (dropped) or not yet come (swapped).
        assert broken.found == events[culprit].chainprev
        assert broken.expected == events[1].chainhash


async def test_audit_verify_command_exits_0_on_an_intact_log_and_1_naming_the_break(
    actors: Actors, make_settings: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cid = await _history(actors)
    settings = actors.stack.settings
    monkeypatch.setenv("CRISIS_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("CRISIS_KAFKA_IDEMPOTENCE", str(settings.kafka_idempotence).lower())
    monkeypatch.setenv("CRISIS_KAFKA_TOPIC", settings.kafka_topic)
    assert await asyncio.to_thread(main, ["audit", "verify", cid]) == 0
    assert f"{cid}: valid, 6 events" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["audit", "verify", "nope"]) == 1
    assert "no event of crisis nope in the log" in capsys.readouterr().err

    events = [r.envelope for r in await _read(settings) if r.envelope.subject == cid]
    copy, _ = await _tampered(make_settings, _dropped(events))
    monkeypatch.setenv("CRISIS_KAFKA_TOPIC", copy.kafka_topic)
    assert await asyncio.to_thread(main, ["audit", "verify", "--json"]) == 1
    out = capsys.readouterr().out
    # The broker client logs to stdout here (a command run from its own command line logs to stderr).
    verdict = json.loads(out[out.index("\n{\n") + 1 :])
    assert verdict["valid"] is False
    broken = verdict["crises"][cid]["broken"]
    assert (broken["offset"], broken["event_id"]) == (2, events[2].id)


async def test_two_api_processes_racing_on_one_crisis_keep_one_verifiable_chain(settings: Settings) -> None:
    _, hub = KeyStore(settings.keys_file).add("hub", Role.COORDINATOR)
    _, bka = KeyStore(settings.keys_file).add("bka", Role.AUTHORITY)
    with api_processes(settings, 2) as processes:
        async with httpx.AsyncClient(timeout=30) as http:
            body = {"title": "Attack", "status": "activated", "level": 1, "criteria": ["viral_spread"]}
            opened = await http.post(f"{processes[0].url}/v1/crises", json=body, headers=auth(hub))
            cid = opened.json()["id"]
            await _wait_for(http, [p.url for p in processes], cid, bka)

            async def share(url: str, n: int) -> httpx.Response:
                item = {"kind": "md5", "value": f"{n:032x}"}
                path = f"{url}/v1/crises/{cid}/indicators"
                return await http.post(path, json={"indicators": [item]}, headers=auth(bka))

            answers = await asyncio.gather(*(share(processes[n % 2].url, n) for n in range(1, 41)))
    assert [a.status_code for a in answers] == [200] * 40, [a.text for a in answers if a.status_code != 200]
    log = await _read(settings)
    assert verify(log, cid).valid
    accepted = {r.envelope.id for r in log if r.envelope.type == "indicator.shared"}
    ids = {a.json()["items"][0]["indicator_id"] for a in answers}
    assert len(ids) == 40
    assert len(accepted) == 40
    # The processes did race: some events were refused on a stale head and published again, same id.
    shares = [r.envelope.id for r in log if r.envelope.type == "indicator.shared"]
    assert len(shares) > len(accepted)


async def _wait_for(http: httpx.AsyncClient, urls: list[str], cid: str, key: str) -> None:
    for _ in range(200):
        codes = [(await http.get(f"{u}/v1/crises/{cid}", headers=auth(key))).status_code for u in urls]
        if codes == [200, 200]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the crisis did not reach both processes")
