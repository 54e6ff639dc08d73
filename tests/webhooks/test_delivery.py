"""Webhooks end to end: the API, the log on a real broker, the deliverer and a real HTTP receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from standardwebhooks import Webhook

from crisis.config import Settings
from crisis.runtime import stack
from tests.api.conftest import Actors
from tests.conftest import Stack
from tests.webhooks.receiver import Receiver, receiving

pytestmark = pytest.mark.kafka

SHA = "a" * 64


def fast(make_settings: Any, tmp_path: Path, **overrides: Any) -> Settings:
    """A deliverer that retries fast: 4 attempts, 50 ms doubling to at most 200 ms."""
    values: dict[str, Any] = {
        "webhooks_file": tmp_path / "webhooks.db",
        "webhook_deliverer": True,
        "webhook_allow_private": True,  # the receivers listen on 127.0.0.1
        "webhook_attempts": 4,
        "webhook_backoff_initial_s": 0.05,
        "webhook_backoff_max_s": 0.2,
        "webhook_poll_s": 0.05,
        **overrides,
    }
    settings: Settings = make_settings(**values)
    return settings


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Actors]:
    async with stack(settings, gateway=False) as parts:
        parts.__class__ = Stack
        async with httpx.AsyncClient(base_url=parts.api_url, timeout=30) as http:
            yield Actors(parts, http)  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def actors(make_settings: Any, tmp_path: Path) -> AsyncIterator[Actors]:
    async with running(fast(make_settings, tmp_path)) as result:
        yield result


async def register(
    actors: Actors, receiver: Receiver, role: str = "provider", org: str | None = None, **body: Any
) -> dict[str, Any]:
    payload = {"url": receiver.url, "types": ["indicator.shared"], **body}
    r = await actors.call("POST", "/v1/webhooks", role, org, json=payload)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def delivery(actors: Actors, endpoint: str, event: str, role: str, state: str) -> dict[str, Any]:
    """The delivery's record once it reaches `state`."""
    async with asyncio.timeout(20):
        while True:
            r = await actors.call("GET", f"/v1/webhooks/{endpoint}/deliveries/{event}", role)
            if r.status_code == 200 and r.json()["state"] == state:
                found: dict[str, Any] = r.json()
                return found
            await asyncio.sleep(0.05)


async def test_a_receiver_that_fails_twice_then_recovers_gets_one_signed_event_with_one_id(
    actors: Actors,
) -> None:
    async with receiving(failures=2) as receiver:
        hook = await register(actors, receiver)
        crisis = await actors.crisis()
        indicator = await actors.shared_id(crisis["id"], {"kind": "sha256", "value": SHA})
        sent = await receiver.wait_for(3)
        verifier = Webhook(hook["secret"])
        events = [verifier.verify(r.body, r.headers) for r in sent]
        assert [r.status for r in sent] == [500, 500, 204]
        assert len({r.headers["webhook-id"] for r in sent}) == 1  # the receiver dedupes on it
        event = events[-1]
        assert event["type"] == "indicator.shared" and event["subject"] == crisis["id"]
        assert event["data"]["indicator_id"] == indicator and event["id"] == sent[0].headers["webhook-id"]
        record = await delivery(actors, hook["id"], event["id"], "provider", "delivered")
        assert [(a["status"], a["error"]) for a in record["attempts"]] == [
            (500, "HTTP 500"),
            (500, "HTTP 500"),
            (204, ""),
        ]
        await asyncio.sleep(0.3)
        assert len(receiver.requests) == 3  # delivered: never sent again


async def test_exhausted_attempts_are_a_dead_letter_the_hub_sees_and_redelivers(actors: Actors) -> None:
    async with receiving(failures=100) as receiver:
        hook = await register(actors, receiver)
        crisis = await actors.crisis()
        await actors.shared_id(crisis["id"], {"kind": "sha256", "value": SHA})
        [first, *_] = await receiver.wait_for(4)
        event_id = first.headers["webhook-id"]
        dead = await delivery(actors, hook["id"], event_id, "provider", "dead")
        assert len(dead["attempts"]) == 4
        r = await actors.call("GET", "/v1/webhook-deliveries", "coordinator", params={"state": "dead"})
        assert [(d["endpoint_id"], d["event_id"]) for d in r.json()["items"]] == [(hook["id"], event_id)]
        assert len(receiver.requests) == 4  # dead: no fifth attempt of its own

        receiver.failures = 0  # the receiver recovers; the hub sends the dead letter again
        r = await actors.call(
            "POST", f"/v1/webhooks/{hook['id']}/deliveries/{event_id}/redeliver", "coordinator"
        )
        assert r.status_code == 202, r.text
        done = await delivery(actors, hook["id"], event_id, "coordinator", "delivered")
        assert [a["status"] for a in done["attempts"]] == [500, 500, 500, 500, 204]
        assert receiver.requests[-1].headers["webhook-id"] == event_id
        Webhook(hook["secret"]).verify(receiver.requests[-1].body, receiver.requests[-1].headers)
        r = await actors.call("GET", "/v1/webhook-deliveries", "coordinator", params={"state": "dead"})
        assert r.json()["items"] == []


async def test_a_webhook_never_delivers_what_its_organisation_could_not_read(actors: Actors) -> None:
    async with receiving() as inside, receiving() as outside:
        ours = await register(actors, inside, "provider")
        theirs = await register(actors, outside, "provider", org="tubeco")
        crisis = await actors.crisis()
        red = await actors.share(
            crisis["id"], [{"kind": "md5", "value": "b" * 32}], tlp="red", tlprecipients=["vidshare"]
        )
        assert red.status_code == 200, red.text
        green = await actors.shared_id(crisis["id"], {"kind": "sha256", "value": SHA}, tlp="amber")
        [got] = await outside.wait_for(1)
        assert json.loads(got.body)["data"]["indicator_id"] == green
        inside_ids = {json.loads(r.body)["data"]["indicator_id"] for r in await inside.wait_for(2)}
        assert green in inside_ids and len(inside_ids) == 2
        # The RED event was folded (and judged) before the AMBER one reached anyone: never queued for tubeco.
        r = await actors.call("GET", "/v1/webhook-deliveries", "provider", org="tubeco")
        assert [d["endpoint_id"] for d in r.json()["items"]] == [theirs["id"]]
        # The declaring hub is among a RED indicator's recipients and sees all three records; a coordinator
        # outside that audience sees the two AMBER ones only, never a sign that the RED one exists.
        r = await actors.call("GET", "/v1/webhook-deliveries", "coordinator")
        assert len(r.json()["items"]) == 3
        r = await actors.call("GET", "/v1/webhook-deliveries", "coordinator", org="eu-hub")
        assert sorted(d["endpoint_id"] for d in r.json()["items"]) == sorted([ours["id"], theirs["id"]])


async def test_registration_belongs_to_the_organisation_and_shows_the_secret_once(actors: Actors) -> None:
    async with receiving() as receiver:
        hook = await register(actors, receiver, types=["indicator.shared", "indicator.sighted"])
        listed = (await actors.call("GET", "/v1/webhooks", "provider")).json()
        assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
        assert (await actors.call("GET", "/v1/webhooks", "authority")).json() == []
        other = await actors.call("DELETE", f"/v1/webhooks/{hook['id']}", "authority")
        assert other.status_code == 404
        assert (await actors.call("DELETE", f"/v1/webhooks/{hook['id']}", "provider")).status_code == 204
        assert (await actors.call("GET", f"/v1/webhooks/{hook['id']}", "provider")).status_code == 404


async def test_an_organisation_registers_a_bounded_number_of_webhooks(
    make_settings: Any, tmp_path: Path
) -> None:
    async with running(fast(make_settings, tmp_path, webhook_max_per_org=2)) as actors:
        body = {"url": "https://hooks.example.org/", "types": ["indicator.shared"]}
        answers = [(await actors.call("POST", "/v1/webhooks", "provider", json=body)) for _ in range(3)]
        assert [r.status_code for r in answers] == [201, 201, 409]
        assert answers[2].json()["code"] == "too_many_webhooks"
        assert (await actors.call("POST", "/v1/webhooks", "authority", json=body)).status_code == 201


async def test_bad_registrations_are_refused_with_the_field_named(actors: Actors) -> None:
    cases = [
        ({"url": "ftp://example.org/", "types": ["indicator.shared"]}, "url"),
        ({"url": "https://example.org/", "types": ["indicator.shred"]}, "types.0"),
        ({"url": "https://example.org/", "types": []}, "types"),
    ]
    for body, field in cases:
        r = await actors.call("POST", "/v1/webhooks", "provider", json=body)
        assert r.status_code == 422, r.text
        assert field in [e["field"] for e in r.json()["errors"]], r.json()


async def test_events_written_while_no_deliverer_ran_are_delivered_once_when_one_starts(
    make_settings: Any, tmp_path: Path
) -> None:
    """`crisis serve api` does not deliver; the deliverer started later reads the log from its start, sends
    what it missed, and, started again, sends nothing twice."""
    quiet = make_settings(webhooks_file=tmp_path / "webhooks.db", webhook_allow_private=True)
    delivering = quiet.model_copy(update={"webhook_deliverer": True, "webhook_poll_s": 0.05})
    async with receiving() as receiver:
        async with stack(quiet, gateway=False) as running:
            running.__class__ = Stack
            async with httpx.AsyncClient(base_url=running.api_url, timeout=30) as http:
                actors = Actors(running, http)  # type: ignore[arg-type]
                hook = await register(actors, receiver)
                crisis = await actors.crisis()
                indicator = await actors.shared_id(crisis["id"], {"kind": "sha256", "value": SHA})
                await asyncio.sleep(0.3)
                assert receiver.requests == []  # no deliverer in this process
        for _ in range(2):
            async with stack(delivering, api=False, gateway=False):
                [got] = await receiver.wait_for(1)
                await asyncio.sleep(0.3)
        assert len(receiver.requests) == 1
        event = Webhook(hook["secret"]).verify(got.body, got.headers)
        assert event["data"]["indicator_id"] == indicator


async def test_a_revoked_key_s_webhook_receives_nothing_more(actors: Actors) -> None:
    async with receiving() as receiver, receiving() as witness:
        revoked = await register(actors, receiver)
        await register(actors, witness, "authority")
        crisis = await actors.crisis()
        await actors.shared_id(crisis["id"], {"kind": "sha256", "value": SHA})
        await receiver.wait_for(1)
        actors.stack.keys.revoke(actors.key("provider").split("_")[1])
        later = await actors.shared_id(crisis["id"], {"kind": "md5", "value": "c" * 32})
        # Once the witness has the later event, the deliverer has judged it for every endpoint.
        got = await witness.wait_for(2)
        assert later in {json.loads(r.body)["data"]["indicator_id"] for r in got}
        r = await actors.call(
            "GET", "/v1/webhook-deliveries", "coordinator", params={"endpoint_id": revoked["id"]}
        )
        assert len(r.json()["items"]) == 1
        assert len(receiver.requests) == 1


async def test_a_dead_receiver_s_retries_never_hold_up_another_endpoint(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = fast(
        make_settings,
        tmp_path,
        webhook_attempts=50,  # about 50 s of retries: longer than the healthy receiver is waited for
        webhook_backoff_initial_s=0.5,
        webhook_backoff_max_s=1.0,
        webhook_max_in_flight=2,
        webhook_max_in_flight_per_endpoint=1,
    )
    async with running(settings) as actors, receiving(failures=10_000) as dead, receiving() as healthy:
        await register(actors, dead)
        await register(actors, healthy, "authority")
        crisis = await actors.crisis()
        shared = [
            await actors.shared_id(crisis["id"], {"kind": "md5", "value": f"{n:032x}"}) for n in range(3)
        ]
        got = await healthy.wait_for(3)
        assert {json.loads(r.body)["data"]["indicator_id"] for r in got} == set(shared)
        assert {r.headers["webhook-id"] for r in dead.requests} == {dead.requests[0].headers["webhook-id"]}


async def test_removing_an_endpoint_stops_the_retries_under_way(make_settings: Any, tmp_path: Path) -> None:
    settings = fast(make_settings, tmp_path, webhook_attempts=50, webhook_backoff_max_s=0.1)
    async with running(settings) as actors, receiving(failures=10_000) as receiver:
        hook = await register(actors, receiver)
        crisis = await actors.crisis()
        await actors.shared_id(crisis["id"], {"kind": "sha256", "value": SHA})
        await receiver.wait_for(2)
        assert (await actors.call("DELETE", f"/v1/webhooks/{hook['id']}", "provider")).status_code == 204
        removed_at = len(receiver.requests)
        await asyncio.sleep(1.0)  # ten more attempts' worth, had the retries gone on
        assert len(receiver.requests) <= removed_at + 1  # at most the attempt already on its way
