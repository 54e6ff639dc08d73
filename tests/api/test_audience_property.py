"""No leak, no lost share: random shares, sightings, retractions and actions through the real API.

Each generated case drives the FastAPI app in-process (httpx over ASGI) on a Ledger over the memory bus,
then checks, for every organisation, what it may learn against a model of the audience rules restated
from the product brief (not the server's code):
  (a) nothing outside its audience reaches it: no id of an indicator it may not read appears in any answer
      it got (share answers, lists, reports, acknowledgements) or in any event the gateway would deliver
      to it, and no answer about such an indicator differs from the answer about one that does not exist;
  (b) everything inside its audience does: it lists exactly the indicators it may read, and the gateway
      selects each one's `indicator.shared` event for it.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from crisis.api.app import create_app
from crisis.bus.base import Delivered
from crisis.bus.memory import MemoryBus
from crisis.config import Settings
from crisis.domain.book import Outcome
from crisis.domain.enums import Role, Tlp
from crisis.domain.principal import Principal
from crisis.gateway.fanout import facts_of
from crisis.gateway.protocol import entitled
from crisis.keys import KeyStore
from crisis.ledger import Ledger
from crisis.orgs import OrgRegistry

DECLARER = "hub"
ROLES = {"hub": Role.COORDINATOR, "bka": Role.AUTHORITY, "p1": Role.PROVIDER, "p2": Role.PROVIDER}
ROLES |= {"p3": Role.PROVIDER}
ORGS = sorted(ROLES)
OTHERS = [o for o in ORGS if o != DECLARER]
VALUES = ["a" * 32, "b" * 32]
NAMED = (Tlp.AMBER_STRICT, Tlp.RED)
RANK = {t: i for i, t in enumerate(Tlp)}
ACTIVATED = {"status": "activated", "level": 1, "criteria": ["ongoing_violent_event"]}


@dataclass
class World:
    """The app and keys, made once; each case gets a fresh ledger and bus."""

    app: Any
    keys: dict[str, str]
    principals: dict[str, Principal]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp: Path = tmp_path_factory.mktemp("audience")
    conf = Settings(
        keys_file=tmp / "keys.json",
        orgs_file=tmp / "orgs.json",
        rate_limit_per_s=1e9,
        rate_limit_burst=1_000_000_000,
    )
    store = KeyStore(conf.keys_file)
    registry = OrgRegistry(conf.orgs_file)
    keys, principals = {}, {}
    for org, role in ROLES.items():
        registry.add(org)
        record, keys[org] = store.add(org, role)
        principals[org] = record.principal()
    app = create_app(conf, Ledger(MemoryBus()), store)
    return World(app, keys, principals)


# ------------------------------------------------------------------------------------------ the model


@dataclass
class Model:
    crisis_tlp: Tlp
    crisis_recipients: tuple[str, ...]
    # indicator id -> the organisations that may read it, from the share request that created it
    audience: dict[str, frozenset[str]] = field(default_factory=dict)
    shared_by: dict[str, str] = field(default_factory=dict)
    retracted: set[str] = field(default_factory=set)

    def reads_crisis(self, org: str) -> bool:
        return self.crisis_tlp not in NAMED or org == DECLARER or org in self.crisis_recipients

    def share_audience(self, org: str, tlp: Tlp, recipients: list[str] | None) -> frozenset[str] | None:
        """Who a share may reach, or None when the rules refuse it."""
        if not self.reads_crisis(org) or RANK[tlp] < RANK[self.crisis_tlp]:
            return None
        if tlp not in NAMED:
            return None if recipients else frozenset(o for o in ORGS if self.reads_crisis(o))
        named = list(self.crisis_recipients) if recipients is None else recipients
        inside = self.crisis_tlp not in NAMED or set(named) <= {DECLARER, *self.crisis_recipients}
        if not named or not inside:
            return None
        return frozenset({org, DECLARER, *named})

    def readable(self, org: str) -> set[str]:
        return {i for i, who in self.audience.items() if org in who}


# ------------------------------------------------------------------------------------------ strategies

named = st.lists(st.sampled_from(ORGS), max_size=3, unique=True)
recipient_lists = st.one_of(st.none(), st.none(), named)  # mostly the defaults, which most shares use
labels = st.sampled_from([Tlp.AMBER, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED])  # a repeat is likelier at AMBER
shares = st.tuples(
    st.just("share"), st.sampled_from(ORGS), st.integers(0, len(VALUES) - 1), labels, recipient_lists
)
operations = st.lists(
    st.one_of(
        shares,
        shares,
        st.tuples(st.just("retract"), st.sampled_from(ORGS), st.integers(0, 20)),
        st.tuples(st.just("act"), st.sampled_from(ORGS), st.integers(0, 20)),
    ),
    min_size=2,
    max_size=8,
)
crises = st.tuples(labels, st.lists(st.sampled_from(OTHERS), min_size=1, max_size=3, unique=True))


# ------------------------------------------------------------------------------------------ one case


def seen(what: str) -> None:
    """Count a situation in hypothesis's statistics (`--hypothesis-show-statistics`)."""
    if currently_in_test_context():
        event(what)


class Case:
    """One generated case against one crisis: runs the operations, then checks every organisation."""

    def __init__(self, keys: dict[str, str], http: httpx.AsyncClient, model: Model, crisis_id: str) -> None:
        self.keys, self.http, self.model, self.crisis_id = keys, http, model, crisis_id
        self.answers: dict[str, list[str]] = {org: [] for org in ORGS}  # every body each org received
        self.asked: dict[str, set[str]] = {org: set() for org in ORGS}  # ids each org named itself
        self.values: dict[str, str] = {}  # indicator id -> its value
        self.base = f"/v1/crises/{crisis_id}"

    async def call(self, org: str, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[org]}"}
        r = await self.http.request(method, self.base + path, json=body, headers=headers)
        self.answers[org].append(r.text)
        return r

    def pick(self, k: int) -> str | None:
        ids = list(self.model.audience)  # creation order: the same case picks the same id every run
        return ids[k % len(ids)] if ids else None

    async def share(self, org: str, value: int, tlp: Tlp, recipients: list[str] | None) -> None:
        body: dict[str, Any] = {"indicators": [{"kind": "md5", "value": VALUES[value]}], "tlp": tlp}
        if recipients is not None:
            body["tlprecipients"] = recipients
        r = await self.call(org, "POST", "/indicators", body)
        wanted = self.model.share_audience(org, tlp, recipients)
        if wanted is None:
            assert r.status_code in (404, 422), r.text
            if not self.model.reads_crisis(org):
                assert r.status_code == 404
            return
        assert r.status_code == 200, r.text
        [item] = r.json()["items"]
        indicator_id = item["indicator_id"]
        if item["status"] == "created" and VALUES[value] in self.values.values():
            seen("a value already held by another audience stands as its own indicator")
        self.values[indicator_id] = VALUES[value]
        if item["status"] == "created":
            self.model.audience[indicator_id] = wanted
            self.model.shared_by[indicator_id] = org
        else:
            seen("a sighting")
            # Merged only into an indicator with exactly the audience asked for: nothing lost, no one added.
            assert item["status"] == "sighting", item
            assert self.model.audience[indicator_id] == wanted
            assert indicator_id not in self.model.retracted

    async def retract(self, org: str, k: int) -> None:
        indicator_id = self.pick(k)
        if indicator_id is None:
            return
        self.asked[org].add(indicator_id)
        r = await self.call(org, "POST", f"/indicators/{indicator_id}/retract", {"reason": "test"})
        if org not in self.model.audience[indicator_id]:
            seen("an org names an indicator outside its audience")
            assert r.status_code == 404, r.text  # the same answer as for an id that does not exist
        elif ROLES[org] is Role.COORDINATOR or org == self.model.shared_by[indicator_id]:
            assert r.status_code == (409 if indicator_id in self.model.retracted else 200), r.text
            self.model.retracted.add(indicator_id)
        else:
            assert r.status_code == 403, r.text

    async def act(self, org: str, k: int) -> None:
        indicator_id = self.pick(k)
        if indicator_id is None:
            return
        self.asked[org].add(indicator_id)
        body = {"indicator_id": indicator_id, "outcome": "received"}
        r = await self.call(org, "POST", "/actions", body)
        if ROLES[org] is not Role.PROVIDER:
            assert r.status_code == 403, r.text
        elif org not in self.model.audience[indicator_id]:
            assert r.status_code == 404, r.text
        else:
            assert r.status_code == 201, r.text

    async def run(self, ops: list[tuple[Any, ...]]) -> None:
        for op in ops:
            await getattr(self, op[0])(*op[1:])

    async def check(self, stream: StreamCheck) -> None:
        """(a) and (b) for every organisation, over its answers and, through `stream`, its events."""
        every = set(self.model.audience)
        for org in ORGS:
            mine = self.model.readable(org)
            if self.model.reads_crisis(org):
                listed = (await self.call(org, "GET", "/indicators")).json()
                assert {i["indicator_id"] for i in listed["items"]} == mine  # (a) and (b)
                assert listed["total"] == len(mine)
                report = (await self.call(org, "GET", "/report")).json()
                assert {i["indicator_id"] for i in report["indicators"]} == mine
            else:
                assert (await self.call(org, "GET", "/indicators")).status_code == 404
            # An id the org sent itself may come back in the answer (a 404 names what was asked for).
            hidden = every - mine - self.asked[org]
            for text in self.answers[org]:
                leaked = {i for i in hidden if i in text}
                assert not leaked, f"{org} learnt {leaked} from {text[:300]}"
            frames = stream(org)
            shared = {
                f["data"]["indicator_id"]
                for f in frames
                if f["type"] == "indicator.shared" and f["subject"] == self.crisis_id
            }
            assert shared == mine, f"the stream gives {org} {shared}, not {mine}"  # (b)
            text = json.dumps(frames)
            assert not {i for i in every - mine if i in text}, f"the stream tells {org} too much"  # (a)


StreamCheck = Callable[[str], list[dict[str, Any]]]  # org -> the events the stream delivers to it


def selected(world: World, ledger: Ledger, folded: list[tuple[Delivered, Outcome]]) -> StreamCheck:
    """The events the gateway's selection (the code every connection goes through) would deliver to an
    organisation's subscription, as the JSON of their frames."""

    def frames(org: str) -> list[dict[str, Any]]:
        principal = world.principals[org]
        return [
            json.loads(d.envelope.model_dump_json())
            for d, outcome in folded
            if outcome.deliverable and entitled(principal, facts_of(d.envelope, ledger.book))
        ]

    return frames


async def play(world: World, tlp: Tlp, recipients: list[str], ops: list[tuple[Any, ...]]) -> None:
    ledger = Ledger(MemoryBus(), poll=0.001)  # an empty log is caught up after one poll: keep it short
    folded: list[tuple[Delivered, Outcome]] = []
    ledger.listeners.append(folded.extend)
    world.app.state.ledger = ledger
    task = asyncio.create_task(ledger.run())
    try:
        await ledger.caught_up.wait()
        transport = httpx.ASGITransport(app=world.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            body: dict[str, Any] = {"title": "Attack", "tlp": tlp, **ACTIVATED}
            body["tlprecipients"] = recipients if tlp in NAMED else []
            headers = {"Authorization": f"Bearer {world.keys[DECLARER]}"}
            r = await http.post("/v1/crises", json=body, headers=headers)
            assert r.status_code == 201, r.text
            case = Case(world.keys, http, Model(tlp, tuple(body["tlprecipients"])), r.json()["id"])
            await case.run(ops)
            await case.check(selected(world, ledger, folded))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@settings(
    max_examples=int(os.environ.get("CRISIS_AUDIENCE_EXAMPLES", "1000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(crisis=crises, ops=operations)
def test_no_org_learns_outside_its_audience_and_none_misses_inside(
    world: World, crisis: tuple[Tlp, list[str]], ops: list[tuple[Any, ...]]
) -> None:
    asyncio.run(play(world, crisis[0], crisis[1], ops))
