"""The route's shortcut for bare hashes gives exactly what the full validation gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crisis.domain.indicators import Indicator, check_items, plain_hash, validate_batch

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
