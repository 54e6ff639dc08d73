"""The crypto adapter with plain values: what a sealed event carries, what opens it, what it reads as."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crisis.crypto.seal import SealError, new_key, seal, unseal
from crisis.domain import sensitive
from crisis.domain.enums import EventType, Mode, Tlp
from crisis.domain.envelope import Envelope
from crisis.domain.events import EVENT_DATA

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
URL = "https://video.example/watch?v=secret-attack-clip"


def event(type: EventType, data: dict[str, Any], event_id: str = "e1") -> Envelope:
    return Envelope(
        id=event_id,
        source="/orgs/bka/keys/k1",
        type=type,
        time=AT,
        subject="c1",
        tlp=Tlp.AMBER,
        mode=Mode.LIVE,
        data=data,
    )


def shared(indicator_id: str = "i1") -> Envelope:
    data = {
        "kind": "url",
        "value": URL,
        "canonical": URL,
        "canonicalization": "crisis-url/1",
        "quality": None,
        "blob": None,
        "context": {"platform": "vidshare", "labels": ["attack"]},
        "indicator_id": indicator_id,
        "shared_by": "bka",
    }
    return event(EventType.INDICATOR_SHARED, data, f"e-{indicator_id}")


def test_a_sealed_share_carries_no_value_and_opens_to_the_same_event() -> None:
    key = new_key()
    env = shared()
    sealed = seal(env, key)
    raw = sealed.model_dump_json()
    assert "secret-attack-clip" not in raw and "vidshare" not in raw
    assert sealed.data["sealed"]["kid"] == "c1/i1"
    # What stays in clear: the ids, the kind, who shared it.
    assert (sealed.data["kind"], sealed.data["indicator_id"], sealed.data["shared_by"]) == (
        "url",
        "i1",
        "bka",
    )
    assert unseal(sealed, key) == env


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.integers(2**63 - 2, 2**70)  # around and beyond 64 bits, which orjson neither writes nor reads
    # JSON has no NaN or infinities (the sealed fields, text and ints, hold no floats at all).
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=10,
)


@given(value=_json_values, context=st.dictionaries(_text, _json_values, max_size=4))
def test_sealed_fields_of_any_json_open_as_the_json_module_reads_them(value: Any, context: Any) -> None:
    env = shared()
    env = env.model_copy(update={"data": {**env.data, "value": value, "context": context}})
    opened = unseal(seal(env, key := new_key()), key)
    assert opened.data == json.loads(json.dumps(env.data))
    assert json.dumps(opened.data, sort_keys=True) == json.dumps(env.data, sort_keys=True)
    assert opened == unseal(seal(env, key), key)


def test_without_its_key_an_event_opens_erased_and_still_fits_its_schema() -> None:
    sealed = seal(shared(), new_key())
    opened = unseal(sealed, None)
    assert opened.data["erased"] is True
    assert opened.data["value"] is None and opened.data["context"] == {}
    assert opened.data["canonical"] == "erased:i1"
    assert "secret-attack-clip" not in opened.model_dump_json()
    EVENT_DATA[EventType.INDICATOR_SHARED].model_validate(opened.data)


def test_a_box_moved_to_another_event_or_altered_does_not_open() -> None:
    key = new_key()
    sealed = seal(shared(), key)
    moved = sealed.model_copy(update={"id": "another"})
    with pytest.raises(SealError):
        unseal(moved, key)
    with pytest.raises(SealError):
        unseal(sealed, new_key())


def test_notes_and_reasons_are_sealed_under_the_indicators_key() -> None:
    key = new_key()
    action = event(
        EventType.ACTION_REPORTED,
        {
            "indicator_id": "i1",
            "outcome": "removed",
            "provider_org": "vidshare",
            "at": AT.isoformat(),
            "note": "uploader jane.doe@example.org",
        },
    )
    sealed = seal(action, key)
    assert sealed.data["sealed"]["kid"] == sensitive.indicator_key("c1", "i1")
    assert "jane.doe" not in json.dumps(sealed.data) and sealed.data["outcome"] == "removed"
    assert unseal(sealed, None).data["note"] == ""


def test_an_event_under_a_destroyed_key_is_published_erased_never_in_clear() -> None:
    action = event(
        EventType.ACTION_REPORTED,
        {
            "indicator_id": "i1",
            "outcome": "removed",
            "provider_org": "vidshare",
            "at": AT.isoformat(),
            "note": "a note about an erased indicator",
        },
    )
    published = seal(action, None)
    assert published.data["erased"] is True and published.data["note"] == ""


def test_crisis_free_text_is_sealed_under_the_crisis_key_and_the_title_stays() -> None:
    data = {
        "crisis": {"id": "c1", "title": "Attack in X", "summary": "witness Jane Doe, 12 Main St"},
        "transition": {"reason": "stream seen by J. Doe"},
        "expected_version": 0,
    }
    env = event(EventType.CRISIS_OPENED, data)
    assert sensitive.key_id(env) == "c1" and sensitive.creates_key(env)
    key = new_key()
    sealed = seal(env, key)
    assert "Doe" not in json.dumps(sealed.data) and sealed.data["crisis"]["title"] == "Attack in X"
    assert unseal(sealed, key).data == data
    erased = unseal(sealed, None).data
    assert erased["crisis"]["summary"] == "" and erased["transition"]["reason"] == ""
    assert erased["crisis"]["erased"] is True


def test_only_openings_and_shares_make_keys() -> None:
    assert sensitive.creates_key(shared())
    sighted = event(EventType.INDICATOR_SIGHTED, {**shared().data, "sighted_by": "x"})
    assert not sensitive.creates_key(sighted)
    later = event(EventType.CRISIS_CLOSED, {"crisis": {}, "transition": {}, "expected_version": 3})
    assert not sensitive.creates_key(later)
