"""Retention and erasure through the real API, the embedded broker's journal, a local store and the stream:
once a key is destroyed, no byte of the value it sealed is left in Kafka, on disk or in any answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from crisis.audit.log import records
from crisis.audit.verify import verify
from crisis.bus.adapters import open_bus
from crisis.config import Settings
from crisis.crypto.sealed import SealedBus
from crisis.domain.enums import Role
from crisis.runtime import stack
from tests.conftest import Stack
from tests.gateway.conftest import client

pytestmark = pytest.mark.kafka

URL = "https://video.example/watch?v=shredme-4f1d"
HASH = "5f0e" * 16
SUMMARY = "witness statement by shredme-summary"
NOTE = "uploader shredme-note@example.org"
REASON = "closing: shredme-reason"
SECRETS = [b"shredme-4f1d", HASH.encode(), b"shredme-summary", b"shredme-note", b"shredme-reason"]


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[Stack, httpx.AsyncClient, dict[str, str]]]:
    async with stack(settings) as run:
        run.__class__ = Stack
        s: Stack = run  # type: ignore[assignment]
        keys = {
            "hub": s.add_key("hub", Role.COORDINATOR),
            "vidshare": s.add_key("vidshare", Role.PROVIDER),
        }
        async with httpx.AsyncClient(base_url=s.api_url, timeout=10) as http:
            yield s, http, keys


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def call(http: httpx.AsyncClient, key: str, method: str, path: str, **kw: Any) -> Any:
    response = await http.request(method, path, headers=auth(key), **kw)
    assert response.status_code < 300, response.text
    return response.json()


async def declare_and_share(
    http: httpx.AsyncClient, keys: dict[str, str], **crisis: Any
) -> tuple[str, str, str]:
    """A crisis with a secret summary, a URL and a hash shared, and a provider's note on the URL."""
    body = {
        "title": "Attack stream",
        "summary": SUMMARY,
        "status": "activated",
        "level": 1,
        "criteria": ["ongoing_violent_event"],
        **crisis,
    }
    cid = (await call(http, keys["hub"], "POST", "/v1/crises", json=body))["id"]
    items = [{"kind": "url", "value": URL}, {"kind": "sha256", "value": HASH}]
    batch = await call(http, keys["hub"], "POST", f"/v1/crises/{cid}/indicators", json={"indicators": items})
    url_id, hash_id = (item["indicator_id"] for item in batch["items"])
    action = {"indicator_id": url_id, "outcome": "removed", "note": NOTE}
    await call(http, keys["vidshare"], "POST", f"/v1/crises/{cid}/actions", json=action)
    return cid, url_id, hash_id


async def raw_records(settings: Settings) -> bytes:
    """Every record of the topic as Kafka holds it (keys, values and headers), read with a plain consumer."""
    consumer = AIOKafkaConsumer(
        settings.kafka_topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    out = bytearray()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch:
                return bytes(out)
            for records in batch.values():
                for r in records:
                    out += (r.key or b"") + (r.value or b"") + b"".join(v for _, v in r.headers)
    finally:
        await consumer.stop()


def files_bytes(*directories: Path) -> bytes:
    return b"".join(p.read_bytes() for d in directories for p in sorted(d.rglob("*")) if p.is_file())


def key_ids(journal: Path) -> set[str]:
    """The ids of the data keys the embedded mode keeps beside its journal, read from the files."""
    return {kid for p in (journal / "data-keys").glob("*.keys") for kid in json.loads(p.read_text())}


def leaked(blob: bytes, secrets: list[bytes]) -> list[bytes]:
    return [s for s in secrets if s in blob]


async def stream_backfill(
    ws_url: str, key: str, cid: str, events: int, cursor: str | None = None
) -> list[dict[str, Any]]:
    """The crisis's history from its start as the stream replays it, or what follows `cursor`."""
    seen: list[dict[str, Any]] = []
    where = {"cursor": cursor} if cursor else {"backfill": "true"}
    async with client(ws_url, key, crisis=cid, **where) as ws:
        async with asyncio.timeout(10):
            while len(seen) < events:
                message = json.loads(await ws.recv())
                if "specversion" in message:
                    seen.append(message)
    return seen


async def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.1)


async def test_after_retention_no_value_survives_in_kafka_the_journal_the_store_or_any_answer(
    make_settings: Any, tmp_path: Path
) -> None:
    journal, state = tmp_path / "log", tmp_path / "state"
    settings = make_settings(kafka_journal_dir=journal, state_dir=state, retention_tick_s=0.2)
    async with running(settings) as (s, http, keys):
        cid, url_id, hash_id = await declare_and_share(http, keys, retention_after_close_s=1)
        hub = keys["hub"]
        listed = await call(http, hub, "GET", f"/v1/crises/{cid}/indicators")
        assert {i["value"] for i in listed["items"]} == {URL, HASH}
        # Sealed from the start: Kafka and the journal never held the values in clear.
        assert leaked(await raw_records(settings), SECRETS) == []
        assert leaked(files_bytes(journal / "events.journal"), SECRETS) == []
        assert {cid, f"{cid}/{url_id}", f"{cid}/{hash_id}"} <= key_ids(journal)

        version = (await call(http, hub, "GET", f"/v1/crises/{cid}"))["version"]
        for to in ("concluded", "closed"):
            body = {"to": to, "expected_version": version, "reason": REASON}
            version = (await call(http, hub, "POST", f"/v1/crises/{cid}/transitions", json=body))["version"]

        async def expired() -> bool:
            crisis = await call(http, hub, "GET", f"/v1/crises/{cid}")
            return crisis["retention_expired_at"] is not None

        await wait_for(expired)
        crisis = await call(http, hub, "GET", f"/v1/crises/{cid}")
        assert crisis["summary"] == "" and crisis["erased"] is True and crisis["title"] == "Attack stream"
        listed = await call(http, hub, "GET", f"/v1/crises/{cid}/indicators")
        assert [(i["kind"], i["value"], i["erased"]) for i in listed["items"]] == [
            ("url", None, True),
            ("sha256", None, True),
        ]
        actions = await call(http, keys["vidshare"], "GET", f"/v1/crises/{cid}/actions")
        assert [(a["outcome"], a["note"]) for a in actions["items"]] == [("removed", "")]
        report = await call(http, hub, "GET", f"/v1/crises/{cid}/report")
        [provider] = [p for p in report["providers"] if p["org"] == "vidshare"]
        assert (provider["indicators"], provider["actioned"]) == (2, 1)
        assert len(report["indicators"]) == 2
        stix = await http.get(f"/v1/crises/{cid}/stix", headers=auth(hub))
        events = await stream_backfill(s.ws_url, hub, cid, events=7)
        answers = json.dumps([crisis, listed, actions, report, events]).encode() + stix.content
        assert leaked(answers, SECRETS) == []
        assert [e["type"] for e in events][-1] == "crisis.retention_expired"
        assert all(e["data"].get("erased") for e in events if e["type"] == "indicator.shared")

        async def keys_gone() -> bool:
            return not any(kid == cid or kid.startswith(f"{cid}/") for kid in key_ids(journal))

        await wait_for(keys_gone)
    # Stopped: the store has committed everything it folded.
    assert (state / "state.sqlite3").stat().st_size > 0
    assert leaked(await raw_records(settings), SECRETS) == []
    assert leaked(files_bytes(journal, state), SECRETS) == []


async def test_a_coordinator_erases_one_indicator_now_and_only_its_value_goes(
    make_settings: Any, tmp_path: Path
) -> None:
    journal, state = tmp_path / "log", tmp_path / "state"
    settings = make_settings(kafka_journal_dir=journal, state_dir=state)
    async with running(settings) as (s, http, keys):
        cid, url_id, hash_id = await declare_and_share(http, keys)
        hub, provider = keys["hub"], keys["vidshare"]
        path = f"/v1/crises/{cid}/erasures"

        # Seen live before the erasure: the gateway keeps these frames for resuming clients.
        before = await stream_backfill(s.ws_url, hub, cid, events=4)
        assert URL in json.dumps(before)

        refused = await http.post(path, headers=auth(provider), json={"indicator_id": url_id, "reason": "x"})
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
        no_reason = await http.post(path, headers=auth(hub), json={"indicator_id": url_id})
        assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
        unknown = await http.post(path, headers=auth(hub), json={"indicator_id": "nope", "reason": "x"})
        assert unknown.status_code == 404

        # Learned into this process's key file beside its store, as every key it holds.
        assert isinstance(s.bus, SealedBus)
        url_key, hash_key = (s.bus.keyring.get(f"{cid}/{kid}") for kid in (url_id, hash_id))
        assert url_key is not None and url_key in files_bytes(state)
        erased = await call(http, hub, "POST", path, json={"indicator_id": url_id, "reason": "personal data"})
        assert (erased["type"], erased["indicator_id"], erased["erased_by"]) == (
            "indicator.erased",
            url_id,
            "hub",
        )
        # Answered once the key is gone for good.
        kept = key_ids(journal)
        assert f"{cid}/{url_id}" not in kept and {cid, f"{cid}/{hash_id}"} <= kept
        # Out of the key file (and its write-ahead log) at once too.
        assert url_key not in files_bytes(state) and hash_key is not None and hash_key in files_bytes(state)
        again = await http.post(path, headers=auth(hub), json={"indicator_id": url_id, "reason": "again"})
        assert again.status_code == 409

        listed = await call(http, hub, "GET", f"/v1/crises/{cid}/indicators")
        assert [(i["indicator_id"], i["value"], i["erased"]) for i in listed["items"]] == [
            (url_id, None, True),
            (hash_id, HASH, False),
        ]
        actions = await call(http, provider, "GET", f"/v1/crises/{cid}/actions")
        assert [(a["outcome"], a["note"]) for a in actions["items"]] == [("removed", "")]
        crisis = await call(http, hub, "GET", f"/v1/crises/{cid}")
        assert crisis["summary"] == SUMMARY  # the crisis's own key lives on
        events = await stream_backfill(s.ws_url, hub, cid, events=5)
        assert [e["type"] for e in events] == [
            "crisis.activated",
            "indicator.shared",
            "indicator.shared",
            "action.reported",
            "indicator.erased",
        ]
        assert [e["data"].get("erased", False) for e in events[1:4]] == [True, False, True]
        # A client resuming from before the erasure gets the events erased, not the frames it saw then.
        resumed = await stream_backfill(s.ws_url, hub, cid, events=4, cursor=before[0]["cursor"])
        assert [e["id"] for e in resumed] == [e["id"] for e in events[1:]]
        url_secrets = [b"shredme-4f1d", b"shredme-note"]
        assert leaked(json.dumps([listed, actions, events, resumed]).encode(), url_secrets) == []

    # Stopped: the store has committed everything it folded. The hash's key lives, so the store holds it
    # (the search below finds what is there); the erased URL and the note on it are nowhere.
    url_secrets = [b"shredme-4f1d", b"shredme-note"]
    assert leaked(await raw_records(settings), url_secrets) == []
    assert leaked(files_bytes(journal), [*url_secrets, HASH.encode()]) == []
    assert leaked(files_bytes(state), [*url_secrets, HASH.encode()]) == [HASH.encode()]
    # The chain covers the records as published (ciphertext): destroying a key leaves it verifiable.
    async with open_bus(settings) as bus:
        log = [record async for record in records(bus)]
    verdict = verify(log, cid)
    assert verdict.valid and verdict.crises[cid].events == 5
    # Restarted on its store and key file: the stream replays the log opened with the keys kept there.
    async with running(settings) as (s, http, keys):
        events = await stream_backfill(s.ws_url, keys["hub"], cid, events=5)
        assert [e["data"].get("value") for e in events[1:3]] == [None, HASH]
    assert url_key not in files_bytes(state)


async def test_the_same_value_shared_after_its_erasure_is_a_new_indicator(make_settings: Any) -> None:
    async with running(make_settings(bus_url="memory://")) as (_, http, keys):
        cid, url_id, _ = await declare_and_share(http, keys)
        body = {"indicator_id": url_id, "reason": "personal data"}
        await call(http, keys["hub"], "POST", f"/v1/crises/{cid}/erasures", json=body)
        again = {"indicators": [{"kind": "url", "value": URL}]}
        batch = await call(http, keys["hub"], "POST", f"/v1/crises/{cid}/indicators", json=again)
        assert batch["counts"]["created"] == 1 and batch["items"][0]["indicator_id"] != url_id
        listed = await call(http, keys["hub"], "GET", f"/v1/crises/{cid}/indicators")
        assert [i["value"] for i in listed["items"]] == [None, HASH, URL]


async def test_a_crisis_free_text_erasure_keeps_the_crisis_going(make_settings: Any) -> None:
    async with running(make_settings()) as (s, http, keys):
        cid, _, _ = await declare_and_share(http, keys)
        hub = keys["hub"]
        await call(http, hub, "POST", f"/v1/crises/{cid}/erasures", json={"reason": "named a witness"})
        crisis = await call(http, hub, "GET", f"/v1/crises/{cid}")
        assert (crisis["summary"], crisis["erased"], crisis["title"]) == ("", True, "Attack stream")
        listed = await call(http, hub, "GET", f"/v1/crises/{cid}/indicators")
        assert URL in {i["value"] for i in listed["items"]}  # indicators have keys of their own
        body = {"to": "concluded", "expected_version": crisis["version"], "reason": REASON}
        concluded = await call(http, hub, "POST", f"/v1/crises/{cid}/transitions", json=body)
        assert concluded["status"] == "concluded"
        assert leaked(await raw_records(s.settings), [b"shredme-summary", b"shredme-reason"]) == []
