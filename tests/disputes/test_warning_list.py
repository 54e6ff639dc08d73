"""The warning list on plain values: a host is listed when it is a listed domain or under one."""

from __future__ import annotations

from crisis.domain.warning_list import flagged, listed_domain

DOMAINS = ["bbc.co.uk", "Reuters.com"]


def test_a_host_matches_its_domain_and_subdomains_only() -> None:
    assert listed_domain("https://www.bbc.co.uk/news/1", DOMAINS) == "bbc.co.uk"
    assert listed_domain("https://REUTERS.com./x", DOMAINS) == "reuters.com"
    assert listed_domain("https://notbbc.co.uk/", DOMAINS) is None
    assert listed_domain("https://bbc.co.uk.evil.example/", DOMAINS) is None
    assert listed_domain("not a url", DOMAINS) is None


def test_only_url_items_are_flagged() -> None:
    items = [
        (0, {"kind": "url", "canonical": "https://www.bbc.co.uk/a"}),
        (1, {"kind": "metadata", "value": "https://www.bbc.co.uk/a"}),
        (2, {"kind": "url", "canonical": "https://video.example/a"}),
    ]
    assert list(flagged(items, DOMAINS)) == [0]
