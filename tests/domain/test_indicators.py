"""Per-kind indicator rules, normalisation, and batch validation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from crisis.domain.book import Book
from crisis.domain.enums import EventType, IndicatorKind, Mode, Tlp
from crisis.domain.envelope import Envelope
from crisis.domain.indicators import (
    HEX_LENGTHS,
    Indicator,
    IndicatorIn,
    ItemError,
    normalise,
    validate_batch,
)
from tests.gateway.events import crisis_opened

SHA = "a" * 64
BLOB = {"sha256": SHA, "size": 1024}


def error_locs(data: dict[str, Any]) -> list[tuple[int | str, ...]]:
    with pytest.raises(ValidationError) as info:
        IndicatorIn.model_validate(data)
    return [e["loc"] for e in info.value.errors()]


@given(kind=st.sampled_from(sorted(HEX_LENGTHS)), data=st.data())
def test_valid_hex_is_accepted_and_canonical(kind: IndicatorKind, data: st.DataObject) -> None:
    n = HEX_LENGTHS[kind]
    value = data.draw(st.text("0123456789abcdef", min_size=n, max_size=n))
    indicator = normalise(IndicatorIn(kind=kind, value=value))
    assert indicator.canonical == value
    assert indicator.identity == (kind, value)
    assert indicator.canonicalization is None


_bad_hex = st.one_of(
    st.text("0123456789abcdef", max_size=130),  # usually the wrong length
    st.text(min_size=1, max_size=130).filter(lambda s: not set(s) <= set("0123456789abcdef")),
)


@given(kind=st.sampled_from(sorted(HEX_LENGTHS)), value=_bad_hex)
def test_malformed_hex_is_rejected_on_value(kind: IndicatorKind, value: str) -> None:
    if len(value) == HEX_LENGTHS[kind] and set(value) <= set("0123456789abcdef"):
        return
    assert error_locs({"kind": kind, "value": value}) == [("value",)]


@given(kind=st.sampled_from(sorted(HEX_LENGTHS)), data=st.data())
def test_uppercase_hex_is_accepted_and_stored_lowercase(kind: IndicatorKind, data: st.DataObject) -> None:
    n = HEX_LENGTHS[kind]
    value = data.draw(st.text("0123456789abcdefABCDEF", min_size=n, max_size=n))
    indicator = normalise(IndicatorIn(kind=kind, value=value))
    assert indicator.value == indicator.canonical == value.lower()
    assert indicator.identity == normalise(IndicatorIn(kind=kind, value=value.lower())).identity


def test_blob_sha256_is_stored_lowercase() -> None:
    video = normalise(IndicatorIn.model_validate({"kind": "tmk", "blob": {"sha256": "AB" * 32, "size": 7}}))
    assert video.blob is not None and video.blob.sha256 == "ab" * 32
    assert video.canonical == f"{'ab' * 32}:7"


@pytest.mark.parametrize(
    ("value", "message"),
    [("a" * 63, "64 hex characters"), ("g" * 64, "hexadecimal"), ("A" * 63, "64 hex characters")],
)
def test_hex_messages(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        IndicatorIn(kind=IndicatorKind.SHA256, value=value)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "url"}, "value"),
        ({"kind": "url", "value": "ftp://example.com/"}, "value"),
        ({"kind": "url", "value": "http://x/", "quality": 5}, "quality"),
        ({"kind": "url", "value": "http://x/", "blob": BLOB}, "blob"),
        ({"kind": "sha256", "value": SHA, "quality": 5}, "quality"),
        ({"kind": "pdq", "value": SHA, "quality": 101}, "quality"),
        ({"kind": "tmk"}, "blob"),
        ({"kind": "vpdq", "blob": BLOB, "value": SHA}, "value"),
        ({"kind": "tmk", "blob": {"sha256": "G" * 64, "size": 1}}, "blob.sha256"),
        ({"kind": "tmk", "blob": {"sha256": SHA, "size": 0}}, "blob.size"),
        ({"kind": "metadata"}, "context"),
        ({"kind": "metadata", "value": "x", "context": {"platform": "p"}}, "value"),
        ({"kind": "metadata", "context": {"language": "en_US"}}, "context.language"),
        ({"kind": "metadata", "context": {"first_seen": "2024-01-01T00:00:00"}}, "context.first_seen"),
        ({"kind": "metadata", "context": {"labels": ["x"] * 21}}, "context.labels"),
        ({"kind": "metadata", "context": {"email": "a@b.c"}}, "context.email"),
        ({"kind": "SHA256", "value": SHA}, "kind"),
        ({"value": SHA}, "kind"),
    ],
)
def test_errors_name_the_field(data: dict[str, Any], field: str) -> None:
    assert [".".join(map(str, loc)) for loc in error_locs(data)] == [field]


def test_url_keeps_raw_value_and_names_its_rules() -> None:
    indicator = normalise(IndicatorIn(kind=IndicatorKind.URL, value="HTTP://Example.com:80/a/../B#x"))
    assert indicator.value == "HTTP://Example.com:80/a/../B#x"
    assert indicator.canonical == "http://example.com/B"
    assert indicator.canonicalization == "crisis-url/2"


def test_an_indicator_shared_under_crisis_url_1_still_folds() -> None:
    book = Book()
    crisis = crisis_opened()
    assert book.apply(crisis).accepted
    data = {
        "kind": "url",
        "value": "http://x/%7e",
        "canonical": "http://x/%7E",
        "canonicalization": "crisis-url/1",
    }
    old = Envelope(
        source="/orgs/bka/keys/k",
        type=EventType.INDICATOR_SHARED,
        subject=crisis.subject,
        tlp=Tlp.AMBER,
        mode=Mode.LIVE,
        data={**data, "canonicalization": "crisis-url/1", "indicator_id": "i-1", "shared_by": "bka"},
    )
    assert book.apply(old).accepted
    assert book.crises[crisis.subject].indicators["i-1"].data.canonicalization == "crisis-url/1"


def test_pdq_quality_and_video_blob() -> None:
    assert normalise(IndicatorIn(kind=IndicatorKind.PDQ, value=SHA, quality=90)).quality == 90
    video = normalise(IndicatorIn.model_validate({"kind": "vpdq", "blob": BLOB}))
    assert video.canonical == f"{SHA}:1024"
    assert video.value is None


def test_metadata_canonical_is_stable_json_in_utc() -> None:
    first = {"labels": ["b", "a"], "platform": "p", "first_seen": "2024-01-01T02:00:00+02:00"}
    second = {"first_seen": "2024-01-01T00:00:00Z", "platform": "p", "labels": ["a", "b"]}
    one, two = (normalise(IndicatorIn(kind=IndicatorKind.METADATA, context=c)) for c in (first, second))
    assert one.canonical == '{"first_seen":"2024-01-01T00:00:00Z","labels":["a","b"],"platform":"p"}'
    assert one.identity == two.identity
    assert one.context.first_seen == datetime(2024, 1, 1, tzinfo=UTC)


def test_indicator_round_trips_through_json() -> None:
    indicator = normalise(IndicatorIn(kind=IndicatorKind.URL, value="http://x/", context={"platform": "p"}))
    assert Indicator.model_validate_json(indicator.model_dump_json()) == indicator


def test_batch_keeps_order_and_isolates_bad_items() -> None:
    results = validate_batch(
        [
            {"kind": "md5", "value": "0" * 32},
            {"kind": "sha1", "value": "ABCG"},
            "not an object",
            {"kind": "url", "value": "http://Example.com"},
            {"kind": "metadata", "context": {"language": "!!"}},
            {"kind": "sha1", "value": "zz", "quality": 1},
        ]
    )
    assert [type(r).__name__ for r in results] == [
        "Indicator",
        "ItemError",
        "ItemError",
        "Indicator",
        "ItemError",
        "ItemError",
    ]
    errors = [r for r in results if isinstance(r, ItemError)]
    assert [(e.index, e.field) for e in errors] == [
        (1, "value"),
        (2, ""),
        (4, "context.language"),
        (5, "value"),
    ]
    assert "hexadecimal" in errors[0].message
    assert "JSON object" in errors[1].message
    assert "quality" in errors[3].message  # every error of an item is reported, the first names the field
    assert isinstance(results[3], Indicator)
    assert results[3].canonical == "http://example.com/"
