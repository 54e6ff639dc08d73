"""The stream protocol with plain values: cursors, subscriptions, messages, close reasons, frames."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from crisis.domain.enums import EventType, IndicatorKind, Mode, Role, Tlp
from crisis.domain.principal import Principal
from crisis.gateway import cursor as cursors
from crisis.gateway import protocol
from crisis.gateway.frames import event_frame, event_prefix, text_frame
from crisis.gateway.protocol import Auth, Facts, Filter, ProtocolError, Subscription
from tests.gateway.events import crisis_opened, parse_frames

ORIGIN = cursors.origin("cluster-a", "crisis.events")


# ------------------------------------------------------------------ cursors


@given(st.lists(st.integers(min_value=0, max_value=2**62), max_size=64))
def test_a_cursor_round_trips(offsets: list[int]) -> None:
    text = cursors.encode(ORIGIN, offsets)
    assert cursors.decode(text) == cursors.Cursor(ORIGIN, tuple(offsets))
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_cursor_for_six_busy_partitions_fits_a_close_reason() -> None:
    text = cursors.encode(ORIGIN, [987_654_321] * 6)
    reason = protocol.close_reason("slow consumer", text)
    assert len(reason.encode()) <= 123
    assert protocol.reason_cursor(reason) == text


def test_the_origin_tells_clusters_and_topics_apart() -> None:
    assert cursors.origin("a", "t") != cursors.origin("b", "t") != cursors.origin("a", "u")
    assert cursors.origin("a", "t") == cursors.origin("a", "t")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "!!!",
        "AQ",
        cursors.encode(ORIGIN, [1, 2]) + "AA",
        "Ag" + cursors.encode(ORIGIN, [1])[2:],
        "x" * 100_000,
    ],
)
def test_malformed_cursors_are_refused(text: str) -> None:
    with pytest.raises(cursors.CursorError):
        cursors.decode(text)


def test_a_partition_the_cursor_does_not_name_starts_at_zero() -> None:
    assert cursors.Cursor(ORIGIN, (5, 6)).next_offset(2) == 0


# ------------------------------------------------------------------ subscriptions


def test_an_empty_query_subscribes_to_everything_live() -> None:
    sub = protocol.parse_query("")
    assert sub == Subscription(Filter(None, None, None, frozenset({Mode.LIVE})))


def test_query_filters_are_parsed() -> None:
    cursor = cursors.encode(ORIGIN, [3, 4])
    sub = protocol.parse_query(
        f"crisis=a,b&crisis=c&type=indicator.shared,crisis.*&kind=sha256&mode=both&cursor={cursor}"
    )
    assert sub.filter.crises == frozenset({"a", "b", "c"})
    assert sub.filter.types == frozenset(
        {EventType.INDICATOR_SHARED, *(t for t in EventType if t.value.startswith("crisis."))}
    )
    assert sub.filter.kinds == frozenset({IndicatorKind.SHA256})
    assert sub.filter.modes == {Mode.LIVE, Mode.EXERCISE}
    assert sub.cursor == cursors.Cursor(ORIGIN, (3, 4))
    assert sub.cursor_text == cursor


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("type=indicator.seen", "unknown event type"),
        ("kind=sha3", "unknown indicator kind"),
        ("mode=drill", "unknown mode"),
        ("cursor=@@", "invalid cursor"),
        ("crises=a", "unknown query parameter"),
        ("mode=live&mode=exercise", "once"),
        ("type=bogus.*", "family"),
        ("crisis=" + ",".join(str(i) for i in range(101)), "at most 100"),
    ],
)
def test_invalid_queries_are_refused_with_a_reason(query: str, words: str) -> None:
    with pytest.raises(ProtocolError, match=words):
        protocol.parse_query(query)


def test_auth_and_subscribe_messages() -> None:
    auth = protocol.parse_message('{"type": "auth", "token": "cb_x_y"}')
    assert auth == Auth("cb_x_y", None)
    auth = protocol.parse_message(
        '{"type": "auth", "token": "t", "types": ["indicator.shared"], "mode": "exercise"}'
    )
    assert isinstance(auth, Auth) and auth.subscription is not None
    assert auth.subscription.filter.types == frozenset({EventType.INDICATOR_SHARED})
    assert auth.subscription.filter.modes == {Mode.EXERCISE}
    sub = protocol.parse_message(json.dumps({"type": "subscribe", "crises": ["c1"], "kinds": "md5,sha1"}))
    assert isinstance(sub, Subscription)
    assert sub.filter.crises == frozenset({"c1"})
    assert sub.filter.kinds == frozenset({IndicatorKind.MD5, IndicatorKind.SHA1})


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1]",
        '{"type": "hello"}',
        '{"type": "auth"}',
        '{"type": "auth", "token": 5}',
        '{"type": "subscribe", "types": [1]}',
        '{"type": "subscribe", "type_filter": []}',
        '{"type": "subscribe", "mode": 3}',
    ],
)
def test_bad_messages_are_refused(text: str) -> None:
    with pytest.raises(ProtocolError):
        protocol.parse_message(text)


def test_bearer_header() -> None:
    assert protocol.bearer(None) is None
    assert protocol.bearer("Bearer cb_a_b") == "cb_a_b"
    assert protocol.bearer("bearer  cb_a_b ") == "cb_a_b"
    for bad in ("Basic abc", "Bearer", "Bearer  "):
        with pytest.raises(ProtocolError):
            protocol.bearer(bad)


# ------------------------------------------------------------------ filters the principal can never satisfy


def who(role: Role, org: str = "o", exercise_only: bool = False) -> Principal:
    return Principal(org=org, role=role, key_id="k", exercise_only=exercise_only)


def test_an_observer_may_not_ask_for_indicators() -> None:
    f = Filter(types=frozenset({EventType.INDICATOR_SHARED}))
    assert protocol.forbidden(who(Role.OBSERVER), f) is not None
    assert protocol.forbidden(who(Role.OBSERVER), Filter()) is None
    assert protocol.forbidden(who(Role.PROVIDER), f) is None


def test_an_exercise_only_key_may_not_ask_for_live() -> None:
    controller = who(Role.COORDINATOR, exercise_only=True)
    assert protocol.forbidden(controller, Filter()) is not None  # live is the default
    assert protocol.forbidden(controller, Filter(modes=frozenset({Mode.EXERCISE}))) is None
    assert protocol.forbidden(controller, Filter(modes=frozenset(Mode))) is None


# ------------------------------------------------------------------ selection


def facts(**kw: object) -> Facts:
    values: dict[str, object] = {
        "crisis": "c1",
        "type": EventType.INDICATOR_SHARED,
        "kind": IndicatorKind.SHA256,
        "tlp": Tlp.AMBER,
        "mode": Mode.LIVE,
        "author_org": "bka",
        "recipients": (),
    }
    values.update(kw)
    return Facts(**values)  # type: ignore[arg-type]


def test_kinds_narrow_indicator_events_but_not_crisis_events() -> None:
    f = Filter(kinds=frozenset({IndicatorKind.MD5}))
    assert not protocol.matches(f, facts())
    assert protocol.matches(f, facts(kind=IndicatorKind.MD5))
    assert protocol.matches(f, facts(type=EventType.CRISIS_ACTIVATED, kind=None))


def test_red_goes_to_named_recipients_and_the_author_only() -> None:
    red = facts(tlp=Tlp.RED, recipients=("vidshare",))
    assert protocol.admits(who(Role.PROVIDER, "vidshare"), Filter(), red)
    assert protocol.admits(who(Role.AUTHORITY, "bka"), Filter(), red)
    assert not protocol.admits(who(Role.PROVIDER, "tubeco"), Filter(), red)


# ------------------------------------------------------------------ messages and frames


def test_control_messages_have_no_dot_in_their_type() -> None:
    p = who(Role.PROVIDER)
    messages = [
        protocol.subscribed(Filter(), "C", p),
        protocol.state({"id": "c1"}, "C"),
        protocol.gap("retention", [protocol.Missing(0, 1, 5)], "C", "gone"),
        protocol.closing(4008, "slow consumer", "C"),
    ]
    for raw in messages:
        message = json.loads(raw)
        assert "." not in message["type"] and message["cursor"] == "C"
    gap = json.loads(messages[2])
    assert gap["missing"] == [{"partition": 0, "from": 1, "to": 5}]


def test_a_long_cursor_is_left_out_of_the_close_reason() -> None:
    long_cursor = cursors.encode(ORIGIN, list(range(1_000_000, 1_000_100)))
    reason = protocol.close_reason("slow consumer", long_cursor)
    assert reason == "slow consumer" and protocol.reason_cursor(reason) is None


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_frames_match_websockets_own_serialisation(size: int) -> None:
    payload = b"x" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


def test_an_event_frame_is_the_structured_cloudevent_plus_its_cursor() -> None:
    env = crisis_opened()
    [message] = parse_frames(event_frame(event_prefix(env), "CUR"))
    assert message == {**env.model_dump(mode="json"), "cursor": "CUR"}
