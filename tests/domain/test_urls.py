"""Canonicalisation rules crisis-url/1, by table and by property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crisis.domain.urls import URL_CANONICALIZATION, UrlError, canonicalize_url


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("HTTP://Example.COM/Path", "http://example.com/Path"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("http://bücher.example/", "http://xn--bcher-kva.example/"),
        ("http://BÜCHER.example/", "http://xn--bcher-kva.example/"),
        ("http://example.com:80/", "http://example.com/"),
        ("https://example.com:443/", "https://example.com/"),
        ("http://example.com:443/", "http://example.com:443/"),
        ("https://example.com:0080/", "https://example.com:80/"),
        ("http://example.com:/", "http://example.com/"),
        ("http://[2001:DB8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
        ("http://example.com/a#frag", "http://example.com/a"),
        ("http://example.com/a/./b/../c", "http://example.com/a/c"),
        ("http://example.com/a/b/..", "http://example.com/a/"),
        ("http://example.com/../../x", "http://example.com/x"),
        ("http://example.com/%7e%2f", "http://example.com/%7E%2F"),
        ("http://example.com/100%", "http://example.com/100%25"),
        ("http://example.com/a b/é", "http://example.com/a%20b/%C3%A9"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com?Q=A", "http://example.com/?Q=A"),
        ("http://example.com/P?b=2&a=1&A=/x?", "http://example.com/P?b=2&a=1&A=/x?"),
        ("http://example.com/?", "http://example.com/?"),
    ],
)
def test_canonical_form(raw: str, canonical: str) -> None:
    assert canonicalize_url(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("ftp://example.com/x", "not supported"),
        ("javascript:alert(1)", "not supported"),
        ("example.com/x", "no scheme"),
        ("localhost:8080/x", "no scheme"),
        ("http:example.com", "'//'"),
        ("http://user:secret@example.com/", "user information"),
        ("http://example.com:99999/", "invalid port"),
        ("http://example.com:0/", "invalid port"),
        ("http://example.com:8o/", "invalid port"),
        ("http:///path", "no host"),
        ("http://a..example/", "empty label"),
        ("http://exa mple.com/", "invalid host"),
        ("http://[not-v6]/", "IPv6"),
        ("http://example.com/\x00", "control"),
        ("http://example.com/" + "a" * 8192, "longer than 8192"),
        ("http://example.com/" + "é" * 2000, "canonical URL is longer"),
        ("   ", "empty"),
    ],
)
def test_rejected(raw: str, message: str) -> None:
    with pytest.raises(UrlError, match=message):
        canonicalize_url(raw)


def test_rules_are_named() -> None:
    assert URL_CANONICALIZATION == "crisis-url/1"


_letters = st.sampled_from("abcXYZ019-üéßжÅ中")
_labels = st.text(_letters, min_size=1, max_size=8)
_text = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=8)
_segments = st.one_of(st.sampled_from([".", "..", "", "%2e", "%aF", "%"]), _text)
_urls = st.builds(
    lambda scheme, labels, port, segs, query, frag: (
        f"{scheme}://{'.'.join(labels)}{port}/{'/'.join(segs)}{query}{frag}"
    ),
    st.sampled_from(["http", "https", "HTTP", "hTTps"]),
    st.lists(_labels, min_size=1, max_size=3),
    st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")),
    st.lists(_segments.map(lambda s: s.replace("/", "").replace("?", "").replace("#", "")), max_size=5),
    st.one_of(st.just(""), _text.map(lambda q: "?" + q.replace("#", ""))),
    st.one_of(st.just(""), _text.map(lambda f: "#" + f)),
)


@given(st.one_of(_urls, st.text()))
def test_canonicalisation_is_idempotent(raw: str) -> None:
    try:
        once = canonicalize_url(raw)
    except UrlError:
        return  # any other exception fails the test: bad input is always a UrlError
    assert once.isascii()
    assert canonicalize_url(once) == once
