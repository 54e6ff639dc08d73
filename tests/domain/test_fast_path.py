"""The route's shortcut for bare hashes gives exactly what the full validation gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from crisis.domain.events import IndicatorShared, shared_data
from crisis.domain.indicators import NO_CONTEXT, Indicator, check_items, plain_hash, validate_batch

hexish = st.text(alphabet="0123456789abcdefABCDEFxyz", min_size=0, max_size=130)
kinds = st.sampled_from(["md5", "sha1", "sha256", "sha512", "pdq", "url", "tmk", "MD5", "nope"])
items = st.one_of(
    st.fixed_dictionaries({"kind": kinds, "value": hexish}),
    st.builds(lambda k, n: {"kind": k, "value": "a" * n}, kinds, st.sampled_from([32, 40, 64, 128, 63])),
    st.fixed_dictionaries({"kind": kinds, "value": hexish, "quality": st.integers(-1, 101)}),
    st.fixed_dictionaries({"kind": kinds, "value": st.integers() | st.none()}),
    st.just({"kind": "url", "value": "https://example.com/a"}),
    st.just([]),
)


def slow(raw: Any) -> dict[str, Any] | None:
    [checked] = validate_batch([raw])
    return checked.model_dump(mode="json") if isinstance(checked, Indicator) else None


@given(items)
def test_the_shortcut_agrees_with_validate_batch(raw: Any) -> None:
    fast = plain_hash(raw)
    if fast is not None:
        assert fast == slow(raw)


@given(st.lists(items, max_size=20))
def test_check_items_keeps_order_and_indices(batch: list[Any]) -> None:
    valid, errors = check_items(batch)
    expected = validate_batch(batch)
    assert [i for i, _ in valid] == [i for i, c in enumerate(expected) if isinstance(c, Indicator)]
    assert [d for _, d in valid] == [c.model_dump(mode="json") for c in expected if isinstance(c, Indicator)]
    assert errors == [c for c in expected if not isinstance(c, Indicator)]


# What the fold is handed for indicator.shared: a bare hash as the route writes it, and variations of it
# that must go through pydantic (or be refused by it) exactly as before.
shared_bodies = st.builds(
    lambda raw, extra, drop: {
        **{
            k: v
            for k, v in {**(plain_hash(raw) or dict(raw)), "indicator_id": "i1", "shared_by": "bka"}.items()
            if k != drop
        },
        **extra,
    },
    st.fixed_dictionaries({"kind": kinds, "value": hexish})
    | st.builds(lambda k, n: {"kind": k, "value": "a" * n}, kinds, st.sampled_from([32, 40, 64, 128])),
    st.fixed_dictionaries(
        {},
        optional={
            "erased": st.sampled_from([False, True, 0, "false", None]),
            "canonical": st.sampled_from(["a" * 64, "b", "", 1]),
            "quality": st.sampled_from([None, 50, 101]),
            "canonicalization": st.sampled_from([None, "x"]),
            "context": st.sampled_from([{}, {"platform": "x"}, dict(NO_CONTEXT.model_dump(mode="json"))]),
            "indicator_id": st.sampled_from(["i2", 7, None]),
            "shared_by": st.sampled_from(["bka", b"bka"]),
            "extra": st.just(1),
        },
    ),
    st.sampled_from([None, "indicator_id", "shared_by", "context", "blob"]),
)


@given(shared_bodies)
def test_the_folds_shortcut_agrees_with_pydantic(data: dict[str, Any]) -> None:
    try:
        expected: IndicatorShared | None = IndicatorShared.model_validate(data)
    except ValidationError:
        expected = None
    try:
        got: IndicatorShared | None = shared_data(data)
    except ValidationError:
        got = None
    if expected is None or got is None:
        assert expected is got
        return
    assert got == expected
    assert got.model_fields_set == expected.model_fields_set
    assert got.model_dump_json() == expected.model_dump_json()
    assert got.context.model_fields_set == expected.context.model_fields_set


def test_bare_hashes_take_the_shortcut() -> None:
    body = {
        **(plain_hash({"kind": "sha256", "value": "a" * 64}) or {}),
        "indicator_id": "i",
        "shared_by": "o",
    }
    assert shared_data(body).context is NO_CONTEXT  # not validated again
    assert shared_data({**body, "erased": False}).context is NO_CONTEXT
