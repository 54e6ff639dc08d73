"""The live fan-out without sockets: recipient selection, one write per batch, holding, floors, overflow."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crisis.bus.base import Delivered
from crisis.domain.audience import may_read
from crisis.domain.book import Book, Outcome
from crisis.domain.enums import EventType, IndicatorKind, Mode, Role, Tlp
from crisis.domain.envelope import Envelope
from crisis.domain.principal import Principal
from crisis.gateway import cursor as cursors
from crisis.gateway.fanout import Fanout, Phase, Subscriber
from crisis.gateway.protocol import Filter
from tests.gateway.events import action_reported, crisis_opened, indicator_shared, parse_frames

OPEN = object()
ORIGIN = cursors.origin("test", "topic")
ORGS = ("hub", "bka", "vidshare", "tubeco")


@dataclass
class FakeTransport:
    buffered: int = 0
    writes: list[bytes] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def messages(self) -> list[dict[str, Any]]:
        return parse_frames(b"".join(self.writes))


@dataclass
class FakeProto:
    state: object = OPEN


def subscriber(principal: Principal, f: Filter | None = None) -> tuple[Subscriber, FakeTransport]:
    transport = FakeTransport()
    return Subscriber(principal, f or Filter(), transport, FakeProto()), transport


class Log:
    """A log of three partitions folded by a Book, as the ledger does, handed out in batches."""

    def __init__(self, partitions: int = 3) -> None:
        self.book = Book()
        self.next = [0] * partitions
        self.overflowed: list[Subscriber] = []
        self.codes: list[int] = []

    def fanout(self, limit: int = 1 << 20) -> Fanout:
        return Fanout(ORIGIN, self.next, self.book, limit=limit, on_drop=self._dropped, open_state=OPEN)

    def _dropped(self, sub: Subscriber, code: int, reason: str) -> None:
        self.overflowed.append(sub)
        self.codes.append(code)

    def fold(self, envelopes: Sequence[Envelope]) -> list[tuple[Delivered, Outcome]]:
        batch = []
        for env in envelopes:
            p = hash(env.subject) % len(self.next)
            batch.append((Delivered(env, p, self.next[p]), self.book.apply(env)))
            self.next[p] += 1
        return batch


def who(org: str, role: Role = Role.PROVIDER, exercise_only: bool = False) -> Principal:
    return Principal(org=org, role=role, key_id=f"key-{org}-{role}", exercise_only=exercise_only)


def phase(sub: Subscriber) -> Phase:
    return sub.phase  # read through a call: mypy would keep the phase narrowed by an earlier assert


def test_one_write_per_connection_per_batch_and_one_group_for_identical_subscribers() -> None:
    log = Log()
    fanout = log.fanout()
    subs = [subscriber(who("vidshare")) for _ in range(5)]
    for sub, _ in subs:
        fanout.attach(sub)
    assert fanout.groups == 1
    crisis = crisis_opened()
    fanout.publish(log.fold([crisis, *(indicator_shared(crisis, seq=i) for i in range(9))]))
    for _, transport in subs:
        assert len(transport.writes) == 1
        assert len(transport.messages()) == 10
    assert fanout.delivered == 50
    # The very same bytes went to every connection: built once.
    assert len({t.writes[0] for _, t in subs}) == 1


def test_each_frame_carries_the_cut_after_its_event() -> None:
    log = Log()
    fanout = log.fanout()
    sub, transport = subscriber(who("hub", Role.COORDINATOR))
    fanout.attach(sub)
    crises = [crisis_opened() for _ in range(6)]
    batch = log.fold(crises)
    fanout.publish(batch)
    vector = [0, 0, 0]
    for (delivered, _), message in zip(batch, transport.messages(), strict=True):
        vector[delivered.partition] = delivered.offset + 1
        assert cursors.decode(message["cursor"]).offsets == tuple(vector)
    assert sub.cursor == transport.messages()[-1]["cursor"]


def test_rejected_and_duplicate_events_are_never_delivered() -> None:
    log = Log()
    fanout = log.fanout()
    sub, transport = subscriber(who("hub", Role.COORDINATOR))
    fanout.attach(sub)
    crisis = crisis_opened()
    orphan = indicator_shared(crisis_opened())  # its crisis was never opened: rejected
    fanout.publish(log.fold([crisis, crisis, orphan]))
    assert [m["id"] for m in transport.messages()] == [crisis.id]


def test_a_catching_up_subscriber_gets_held_frames_on_go_live() -> None:
    log = Log()
    fanout = log.fanout()
    crisis = crisis_opened()
    fanout.publish(log.fold([crisis]))
    sub, transport = subscriber(who("hub", Role.COORDINATOR))
    until = fanout.attach(sub, floor=[0, 0, 0])
    assert until == tuple(log.next) and sub.phase is Phase.CATCHING_UP
    fanout.publish(log.fold([indicator_shared(crisis, seq=1)]))
    assert transport.writes == []  # held while the catch-up reader runs
    fanout.go_live(sub)
    assert [m["type"] for m in transport.messages()] == ["indicator.shared"]
    assert phase(sub) is Phase.LIVE


def test_a_subscriber_resumed_ahead_skips_what_it_saw_and_never_goes_back() -> None:
    log = Log(partitions=1)
    fanout = log.fanout()
    crisis = crisis_opened()
    events = [crisis, *(indicator_shared(crisis, seq=i) for i in range(4))]
    fanout.publish(log.fold(events[:2]))
    sub, transport = subscriber(who("hub", Role.COORDINATOR))
    # Its cut (4) is ahead of this gateway (2): offsets 2 and 3 came from another gateway.
    fanout.attach(sub, floor=[4])
    fanout.go_live(sub)
    assert sub.phase is Phase.FLOOR
    fanout.publish(log.fold(events[2:4]))
    assert transport.writes == []
    fanout.publish(log.fold(events[4:]))
    [message] = transport.messages()
    assert message["id"] == events[4].id and cursors.decode(message["cursor"]).offsets == (5,)
    assert phase(sub) is Phase.LIVE


def test_a_client_over_its_buffer_is_handed_over_with_its_last_cursor() -> None:
    log = Log()
    fanout = log.fanout(limit=1000)
    slow, slow_transport = subscriber(who("vidshare"))
    fast, fast_transport = subscriber(who("vidshare"))
    fanout.attach(slow)
    fanout.attach(fast)
    crisis = crisis_opened()
    fanout.publish(log.fold([crisis]))
    cursor_after_first = slow.cursor
    slow_transport.buffered = 5000  # stopped reading
    fanout.publish(log.fold([indicator_shared(crisis)]))
    assert log.overflowed == [slow] and not slow.attached
    assert slow.cursor == cursor_after_first
    assert len(fast_transport.messages()) == 2 and len(slow_transport.messages()) == 1


class BrokenTransport(FakeTransport):
    def write(self, data: bytes) -> None:
        raise RuntimeError("Cannot call write() after write_eof()")


def test_a_transport_that_fails_drops_only_its_own_client() -> None:
    log = Log()
    fanout = log.fanout()
    good, good_transport = subscriber(who("vidshare"))
    bad = Subscriber(who("vidshare"), Filter(), BrokenTransport(), FakeProto())
    fanout.attach(good)
    fanout.attach(bad)
    fanout.publish(log.fold([crisis_opened()]))
    assert log.overflowed == [bad] and log.codes == [1011]
    assert len(good_transport.messages()) == 1 and good.attached


def test_if_the_fanout_fails_every_client_is_sent_back_to_its_cursor() -> None:
    log = Log()
    fanout = log.fanout()
    subs = [subscriber(who(org))[0] for org in ("vidshare", "tubeco")]
    for sub in subs:
        fanout.attach(sub)

    def boom(*_: object) -> None:
        raise ValueError("a bug while building a frame")

    fanout._item = boom  # type: ignore[method-assign,assignment]
    fanout.publish(log.fold([crisis_opened()]))
    assert set(log.overflowed) == set(subs) and set(log.codes) == {1011}
    assert fanout.subscribers == 0


def test_a_closing_connection_is_skipped() -> None:
    log = Log()
    fanout = log.fanout()
    sub, transport = subscriber(who("hub", Role.COORDINATOR))
    fanout.attach(sub)
    sub.proto = FakeProto(state="closing")
    fanout.publish(log.fold([crisis_opened()]))
    assert transport.writes == []


# ------------------------------------------------------------ the property: nobody gets what the rules deny

tlps = st.sampled_from(list(Tlp))
orgs = st.sampled_from(ORGS)
recipient_sets = st.lists(orgs, max_size=2, unique=True).map(tuple)


@st.composite
def scripts(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Steps: open a crisis, share an indicator, report an action, repeat an event, share into nowhere."""
    steps: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 25))):
        steps.append(
            draw(
                st.one_of(
                    st.tuples(st.just("open"), orgs, st.sampled_from(list(Mode)), tlps, recipient_sets),
                    st.tuples(
                        st.just("share"),
                        st.integers(0, 10),
                        orgs,
                        st.sampled_from(list(IndicatorKind)),
                        tlps,
                        recipient_sets,
                    ),
                    st.tuples(st.just("act"), st.integers(0, 30), orgs),
                    st.tuples(st.just("repeat"), st.integers(0, 30)),
                    st.just(("orphan",)),
                )
            )
        )
    return steps


def build(script: list[tuple[Any, ...]]) -> tuple[list[Envelope], dict[str, IndicatorKind | None]]:
    """Envelopes for a script, and the indicator kind the *script* knows each event concerns."""
    envelopes: list[Envelope] = []
    crises: list[Envelope] = []
    shared: list[tuple[Envelope, IndicatorKind]] = []
    kinds: dict[str, IndicatorKind | None] = {}
    for step in script:
        if step[0] == "open":
            _, org, mode, tlp, recipients = step
            env = crisis_opened(org, mode=mode, tlp=tlp, recipients=recipients)
            crises.append(env)
            kinds[env.id] = None
        elif step[0] == "share" and crises:
            _, i, org, kind, tlp, recipients = step
            env = indicator_shared(crises[i % len(crises)], org, kind=kind, tlp=tlp, recipients=recipients)
            shared.append((env, kind))
            kinds[env.id] = kind
        elif step[0] == "act" and shared:
            indicator, kind = shared[step[1] % len(shared)]
            env = action_reported(indicator, step[2])
            kinds[env.id] = kind
        elif step[0] == "repeat" and envelopes:
            env = envelopes[step[1] % len(envelopes)]
        elif step[0] == "orphan":
            env = indicator_shared(crisis_opened())
            kinds[env.id] = IndicatorKind.SHA256
        else:
            continue
        envelopes.append(env)
    return envelopes, kinds


filters = st.builds(
    Filter,
    crises=st.none(),
    types=st.none() | st.frozensets(st.sampled_from(list(EventType)), min_size=1),
    kinds=st.none() | st.frozensets(st.sampled_from(list(IndicatorKind)), min_size=1),
    modes=st.sampled_from([frozenset({Mode.LIVE}), frozenset({Mode.EXERCISE}), frozenset(Mode)]),
)
principals = st.builds(
    Principal,
    org=orgs,
    role=st.sampled_from(list(Role)),
    key_id=st.sampled_from(["k1", "k2"]),
    exercise_only=st.booleans(),
)


def oracle(
    p: Principal, f: Filter, env: Envelope, kind: IndicatorKind | None, crisis_pick: frozenset[str] | None
) -> bool:
    """The rules restated from the product brief, independently of the gateway's selection code."""
    if crisis_pick is not None and env.subject not in crisis_pick:
        return False
    if f.types is not None and env.type not in f.types:
        return False
    if f.kinds is not None and kind is not None and kind not in f.kinds:
        return False
    if env.mode not in f.modes:
        return False
    return may_read(
        p, type=env.type, tlp=env.tlp, mode=env.mode, author_org=env.author_org, recipients=env.tlprecipients
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    script=scripts(),
    audience=st.lists(st.tuples(principals, filters, st.booleans()), min_size=1, max_size=8),
    cuts=st.lists(st.integers(1, 5), max_size=10),
)
def test_no_delivery_outside_the_rules_and_none_missing(
    script: list[tuple[Any, ...]], audience: list[tuple[Principal, Filter, bool]], cuts: list[int]
) -> None:
    envelopes, kinds = build(script)
    log = Log()
    fanout = log.fanout()
    crisis_ids = sorted({e.subject for e in envelopes if e.type is EventType.CRISIS_OPENED})
    subs = []
    for principal, f, pick_crises in audience:
        picked = frozenset(crisis_ids[::2]) if pick_crises and crisis_ids else None
        f = Filter(picked, f.types, f.kinds, f.modes)
        sub, transport = subscriber(principal, f)
        fanout.attach(sub)
        subs.append((principal, f, transport, picked))
    expected: list[list[str]] = [[] for _ in subs]
    sizes = itertools.cycle(cuts or [len(envelopes) or 1])
    pos = 0
    while pos < len(envelopes):
        chunk = envelopes[pos : pos + next(sizes)]
        pos += len(chunk)
        batch = log.fold(chunk)
        for delivered, outcome in batch:
            env = delivered.envelope
            if not outcome.deliverable:
                continue
            for i, (principal, f, _, picked) in enumerate(subs):
                if oracle(principal, f, env, kinds.get(env.id), picked):
                    expected[i].append(env.id)
        fanout.publish(batch)
    for i, (_, _, transport, _) in enumerate(subs):
        assert [m["id"] for m in transport.messages()] == expected[i]
