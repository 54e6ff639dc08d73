"""The canonical bytes of the hash chain are those every log was written with, whatever an event holds: any
JSON value (unicode, control characters, floats, ints beyond 64 bits) and every event the domain makes."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from crisis.domain import chain, commands, deadlines, retention
from crisis.domain.book import Book
from crisis.domain.crisis import ClockRequest, CrisisCreate, TransitionRequest
from crisis.domain.dispute_commands import resolve
from crisis.domain.disputes import Resolution
from crisis.domain.enums import ActionOutcome, Deadline, EventType, IndicatorKind, Mode, Role, Tlp
from crisis.domain.envelope import TIME_FORMAT, Envelope, replaced, utc_text
from crisis.domain.principal import Principal
from crisis.domain.reads import READS_SOURCE, READS_SUBJECT, AuditReads, ReadCount, ReadKind
from tests.domain.test_commands import write
from tests.gateway.events import action_reported, crisis_opened, indicator_shared

# How the chain was computed when the logs that must keep verifying were written.
_BEFORE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_before(env: Envelope, chainprev: str | None = None) -> bytes:
    attributes: dict[str, Any] = {
        "specversion": env.specversion,
        "id": env.id,
        "source": env.source,
        "type": env.type.value,
        "time": env.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "subject": env.subject,
        "datacontenttype": env.datacontenttype,
        "tlp": env.tlp.value,
        "mode": env.mode.value,
        "data": env.data,
    }
    optional = {
        "tlprecipients": ",".join(env.tlprecipients),
        "role": env.role.value if env.role is not None else None,
        "idempotency": env.idempotency,
        "chainprev": chainprev if chainprev is not None else env.chainprev,
    }
    attributes.update((k, v) for k, v in optional.items() if v)
    return _BEFORE.encode(attributes).encode()


def outcome(canonical: Any, env: Envelope, chainprev: str | None) -> tuple[str, object]:
    """The bytes, or the kind of error (a key json cannot sort, a lone surrogate) the encoder gave."""
    try:
        return ("bytes", canonical(env, chainprev))
    except (TypeError, ValueError) as refused:
        return ("refused", type(refused))


# Hypothesis takes naive bounds and attaches the zone; between these every instant has a time in UTC.
SECOND_YEAR = datetime(2, 1, 1)  # noqa: DTZ001
LAST_DAYS = datetime(9999, 12, 30)  # noqa: DTZ001
everything = st.characters(codec="utf-8")  # control characters, U+2028, astral planes; no lone surrogates
text = st.text(everything, max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(2**63 - 2, 2**64 + 2)
    | st.integers(max_value=-(2**63) + 2)
    | st.floats()  # NaN and the infinities included: json writes them as NaN and Infinity
    | st.sampled_from([1e16, 1e-7, -0.0, 1.5e300, 5e-324, 0.1, 1e22, 123456789012345680.0])
    | st.sampled_from(Tlp)  # a str subclass, as a model dumped in python mode leaves it
    | text
)
keys = text | st.integers() | st.booleans() | st.none() | st.floats()  # json writes such keys as strings


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(text, inner, max_size=4)
        | st.dictionaries(keys, inner, max_size=2)
    )


json_values = st.recursive(scalars, containers, max_leaves=12)
hex64 = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
envelopes = st.builds(
    Envelope,
    id=st.text(everything, min_size=1, max_size=8),
    source=st.text(everything, min_size=1, max_size=8),
    type=st.sampled_from(EventType),
    time=st.datetimes(
        min_value=SECOND_YEAR,
        max_value=LAST_DAYS,
        timezones=st.builds(timezone, st.integers(-23 * 60, 23 * 60).map(lambda m: timedelta(minutes=m))),
    ),
    subject=st.text(everything, min_size=1, max_size=8),
    tlp=st.sampled_from(Tlp),
    mode=st.sampled_from(Mode),
    tlprecipients=st.lists(st.text(everything, min_size=1, max_size=5), max_size=2).map(tuple),
    role=st.none() | st.sampled_from(Role),
    idempotency=st.none() | st.from_regex(r"[0-9a-f]{32}\.[0-9a-f]{64}", fullmatch=True),
    chainprev=st.none() | hex64,
    data=st.dictionaries(text, json_values, max_size=5),
)


def _holding(data: dict[str, Any]) -> Envelope:
    return Envelope(
        source="/orgs/hub/keys/k",
        type=EventType.CRISIS_OPENED,
        subject="c1",
        tlp=Tlp.RED,
        mode=Mode.LIVE,
        data=data,
    )


@given(envelopes, st.none() | st.just("") | hex64)
@example(_holding({"f": [1e-07, 1e16, 1e22, float("nan"), float("inf"), -float("inf"), -0.0]}), None)
@example(_holding({"i": [2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**40]}), None)
@example(_holding({"k": {1: "a", 2.5: "b", False: "c", None: "d"}, "e": Tlp.RED}), None)
@example(_holding({"m": {1: "a", "b": 2}}), None)
@example(_holding({"s": '\x00\x1f\x7f\u2028\u2029\ufeff"\\/é😀', "\x01": ["\ud7ff", "\ue000"]}), None)
def test_canonical_bytes_are_those_the_logs_were_written_with(env: Envelope, chainprev: str | None) -> None:
    assert outcome(chain.canonical, env, chainprev) == outcome(canonical_before, env, chainprev)


@given(
    st.datetimes(timezones=st.just(UTC))
    | st.datetimes(min_value=SECOND_YEAR, max_value=LAST_DAYS, timezones=st.timezones())
)
def test_the_time_is_spelled_as_strftime_spells_it_in_utc(at: datetime) -> None:
    assert utc_text(at) == at.astimezone(UTC).strftime(TIME_FORMAT)


HUB = Principal(org="hub", role=Role.COORDINATOR, key_id="k1")
BKA = Principal(org="bka", role=Role.AUTHORITY, key_id="k2")
VID = Principal(org="vidshare", role=Role.PROVIDER, key_id="k3")


def lifecycle() -> list[Envelope]:
    """One crisis from declaration to closure through the domain's commands, folded as it goes."""
    book, made = Book(), []

    def keep(*events: Envelope) -> None:
        for env in events:
            assert book.apply(env).accepted, env
            made.append(env)

    req = CrisisCreate.model_validate(
        {"title": 'Angriff — Ünterstadt\n\t"live"', "status": "monitoring", "jurisdictions": ["DE"]}
    )
    keep(commands.open_crisis(book, write(HUB), req))
    cid = made[0].subject
    for version, to, level in ((1, "activated", 2), (2, "activated", 3)):
        change = TransitionRequest.model_validate(
            {"to": to, "expected_version": version, "level": level, "criteria": ["viral_spread"]}
        )
        keep(commands.transition(book, write(HUB), cid, change))
    keep(commands.set_clock(book, write(HUB), cid, ClockRequest(expected_version=3, roster=["vidshare"])))
    items = [
        {"kind": "md5", "value": "1" * 32, "canonical": "1" * 32},
        {
            "kind": "url",
            "value": "https://vidéo.example/w?v=ß",
            "canonical": "https://xn--vido-bpa.example/w?v=ß",
        },
        {"kind": "pdq", "value": "f" * 64, "canonical": "f" * 64, "quality": 90},
    ]
    keep(*commands.share(book, write(BKA), cid, list(enumerate(items)), None, None))
    keep(*commands.share(book, write(HUB), cid, [(0, items[0])], None, None))  # sighted
    shared = [env.data["indicator_id"] for env in made if env.type is EventType.INDICATOR_SHARED]
    keep(commands.report_action(book, write(VID), cid, shared[0], ActionOutcome.REMOVED, "gone ✓"))
    keep(commands.report_action(book, write(VID), cid, shared[1], ActionOutcome.DISAGREE, "not it"))
    dispute = next(iter(book.crises[cid].disputes))
    keep(resolve(book, write(HUB), cid, dispute, Resolution.CONFIRMED, "it is"))
    record = book.crises[cid]
    due, _ = deadlines.to_publish(
        record, shared[2], Deadline.RECEIPT, record.state.updated_at + timedelta(days=1)
    )
    keep(deadlines.overdue_event(record, due[0], due[0].due_at + timedelta(seconds=1)))
    keep(commands.retract(book, write(BKA), cid, shared[2], "wrong hash"))
    keep(commands.erase(book, write(HUB), cid, shared[1], "court order"))
    for version, to in ((record.state.version, "concluded"), (record.state.version + 1, "closed")):
        keep(commands.transition(book, write(HUB), cid, TransitionRequest(to=to, expected_version=version)))  # type: ignore[arg-type]
    keep(commands.erase(book, write(HUB), cid, None, "retention"))
    keep(retention.expiry_event(book.crises[cid].state, datetime(2100, 1, 1, tzinfo=UTC)))
    return made


def fixture_events() -> list[Envelope]:
    crisis = crisis_opened(tlp=Tlp.RED, recipients=("bka", "vidshare"), title="Ünterstadt\u2028\x00")
    events = [crisis, crisis_opened(mode=Mode.EXERCISE)]
    events += [indicator_shared(crisis, kind=kind, seq=n) for n, kind in enumerate(IndicatorKind)]
    events += [action_reported(events[2], outcome=outcome) for outcome in ActionOutcome]
    reads = AuditReads(
        process="api-1",
        period_from=datetime(2026, 3, 1, tzinfo=UTC),
        period_to=datetime(2026, 3, 1, 0, 1, tzinfo=UTC),
        counts=[ReadCount(org="bka", key_id="k2", kind=ReadKind.STREAM, count=3)],
    )
    events.append(
        Envelope(
            source=READS_SOURCE,
            type=EventType.AUDIT_READS,
            subject=READS_SUBJECT,
            tlp=Tlp.RED,
            mode=Mode.LIVE,
            data=reads.model_dump(mode="json"),
        )
    )
    return events + lifecycle()


def test_every_event_the_domain_makes_links_with_the_bytes_it_always_had() -> None:
    events = fixture_events()
    assert {env.type for env in events} == set(EventType)
    prev = chain.GENESIS
    for env in events:
        assert chain.canonical(env, prev) == canonical_before(env, prev)
        linked = chain.stamp(env, prev)
        assert linked.chainhash == hashlib.sha256(canonical_before(env, prev)).hexdigest()
        copied = env.model_copy(update={"chainprev": prev, "chainhash": linked.chainhash})
        assert linked == copied and linked.model_fields_set == copied.model_fields_set
        assert linked.model_dump_json() == copied.model_dump_json()
        assert chain.intact(linked)
        with pytest.raises(ValidationError, match="frozen"):
            linked.chainhash = prev  # type: ignore[misc]
        prev = linked.chainhash


def test_an_envelope_replaced_is_what_model_copy_makes_and_leaves_the_original_alone() -> None:
    for env in fixture_events():
        data = {**env.data, "sealed": {"kid": "k", "alg": "A256GCM", "box": "AAAA"}}
        made, copied = replaced(env, data=data), env.model_copy(update={"data": data})
        assert made == copied and made.model_fields_set == copied.model_fields_set
        assert made.model_dump_json() == copied.model_dump_json()
        assert env.data is not data and "sealed" not in env.data
        with pytest.raises(ValidationError, match="frozen"):
            made.data = {}  # type: ignore[misc]
