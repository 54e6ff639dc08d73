"""The warning list: domains (news, research, archives) whose URLs are rarely what a crisis means to remove.

A share of a URL on one of them is held back until its sharer confirms it (`confirm_warnings`), so that a
newspaper's report on an attack is not sent out to every platform as if it were the attacker's video.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit


def listed_domain(url: str, domains: Iterable[str]) -> str | None:
    """The listed domain the URL's host is, or is under (`www.bbc.co.uk` is under `bbc.co.uk`); else None."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    for domain in domains:
        d = domain.strip().lower().lstrip(".")
        if d and (host == d or host.endswith("." + d)):
            return d
    return None


def flagged(items: Sequence[tuple[int, dict[str, Any]]], domains: Sequence[str]) -> dict[int, str]:
    """Index -> warning for each URL item of a batch whose host is on the list."""
    found = {}
    for index, data in items:
        if data.get("kind") == "url":
            domain = listed_domain(str(data.get("canonical") or data.get("value") or ""), domains)
            if domain is not None:
                found[index] = f"{domain} is on the warning list (news and research sites)"
    return found
