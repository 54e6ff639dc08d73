"""Canonicalisation rules crisis-url/2, by table and by property."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crisis.domain.urls import TRACKING_PARAMETERS, URL_CANONICALIZATION, UrlError, canonicalize_url


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
        ("http://example.com/%7e%2f", "http://example.com/~%2F"),
        ("http://example.com/%41%2D%5f%2E%30?%62=%3d", "http://example.com/A-_.0?b=%3D"),
        ("http://example.com/a/%2E%2E/b", "http://example.com/b"),
        ("http://example.com/%25%37E", "http://example.com/%257E"),
        ("http://example.com/%C3%A9", "http://example.com/%C3%A9"),
        ("http://example.com/?utm_source=x&b=2&fbclid=y&a=1", "http://example.com/?b=2&a=1"),
        ("http://example.com/x?utm_source=news&utm_medium=email", "http://example.com/x"),
        ("http://example.com/?%75tm_source=x&q", "http://example.com/?q"),
        ("http://example.com/?UTM_SOURCE=x&utm_sourcey=1", "http://example.com/?UTM_SOURCE=x&utm_sourcey=1"),
        ("http://example.com/?q=utm_source&utm_source", "http://example.com/?q=utm_source"),
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
    assert URL_CANONICALIZATION == "crisis-url/2"


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


_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
# Reserved characters whose escape must survive: decoding any of them could change what the URL means.
_RESERVED = ":/?#[]@!$&'()*+,;="


def _escape(ch: str, lower: bool) -> str:
    code = f"%{ord(ch):02X}"
    return code.lower() if lower else code


@given(_urls, st.data())
def test_an_escaped_unreserved_character_is_the_character(raw: str, data: st.DataObject) -> None:
    try:
        expected = canonicalize_url(raw)
    except UrlError:
        return
    host_end = raw.index("//") + 2
    path_start = raw.find("/", host_end) if "/" in raw[host_end:] else len(raw)
    # Tokens: an existing escape stays whole; any other unreserved character may be escaped, in either case.
    before_fragment, hash_sign, fragment = raw[path_start:].partition("#")
    tokens = re.findall(r"%[0-9A-Fa-f]{2}|.", before_fragment, re.DOTALL)
    # The fragment stays as it was: dropping it would change more than the escaping (a trailing space
    # before it would become the end of the text, which is trimmed).
    escaped = (
        raw[:path_start]
        + "".join(
            _escape(t, data.draw(st.booleans())) if t in _UNRESERVED and data.draw(st.booleans()) else t
            for t in tokens
        )
        + hash_sign
        + fragment
    )
    assert canonicalize_url(escaped) == expected


@given(st.sampled_from(_RESERVED), st.booleans(), st.sampled_from(["/a{}b", "/?q={}"]))
def test_escapes_of_reserved_characters_are_kept(ch: str, lower: bool, where: str) -> None:
    url = "http://example.com" + where.format(_escape(ch, lower))
    assert canonicalize_url(url) == "http://example.com" + where.format(_escape(ch, lower=False))


_names = st.text("abcxyz_", min_size=1, max_size=6).filter(lambda n: n not in TRACKING_PARAMETERS)
_values = st.text("abc123-%=", max_size=5).map(lambda v: v.replace("%", "%25"))


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just(True), st.sampled_from(sorted(TRACKING_PARAMETERS)), _values),
            st.tuples(st.just(False), _names, _values),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_tracking_parameters_go_and_the_others_stay_in_order(params: list[tuple[bool, str, str]]) -> None:
    query = "&".join(f"{name}={value}" for _, name, value in params)
    kept = [f"{name}={value}" for tracking, name, value in params if not tracking]
    expected = "http://example.com/p" + ("?" + "&".join(kept) if kept else "")
    assert canonicalize_url(f"http://example.com/p?{query}") == canonicalize_url(expected)
    assert canonicalize_url(expected).partition("?")[2] == "&".join(kept)


def test_the_documented_tracking_list_is_the_one_applied() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "indicators.md").read_text()
    section = doc.split("### Tracking parameters", 1)[1].split("###", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    assert {name for row in rows for name in re.findall(r"`([^`]+)`", row)} == TRACKING_PARAMETERS
