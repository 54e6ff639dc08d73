"""Ids as people type them: any unique prefix of an id the key may read (`crisis tail` shows 8 characters).

Candidates come from the API's own listings, which hold only what the key may read, so neither a miss nor
an ambiguity can reveal an id outside the key's audience.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from crisis.cli.errors import CliError
from crisis.terminal import printable

if TYPE_CHECKING:
    from crisis.client.http import Client

# Candidates named in an ambiguity message; the rest are counted.
SHOWN = 5
# Indicators per listing call (the API's largest page).
PAGE = 10_000


def pick(prefix: str, ids: Iterable[str], what: str, where: str = "") -> str:
    """The one id equal to `prefix` or starting with it, or CliError naming the candidates."""
    matches = []
    for candidate in ids:
        if candidate == prefix:
            return candidate
        if candidate.startswith(prefix):
            matches.append(candidate)
    if len(matches) == 1:
        return matches[0]
    shown = printable(prefix)
    if not matches:
        raise CliError(f"no {what} you may read{where} starts with '{shown}'")
    more = len(matches) - SHOWN
    listed = ", ".join(matches[:SHOWN]) + (f" and {more} more" if more > 0 else "")
    raise CliError(f"'{shown}' matches {len(matches)} {what}s{where}: {listed}; give more characters")


def whole(text: str) -> bool:
    """A whole id (the API makes UUIDs): used as given, with no listing; the API answers for it."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def crisis_id(api: Client, prefix: str) -> str:
    """The full id of the one crisis the key may read whose id starts with `prefix`."""
    if not prefix:
        raise CliError("a crisis id (or a prefix of one) is needed")
    if whole(prefix):
        return prefix
    return pick(prefix, (c["id"] for c in api.get("/v1/crises")["items"]), "crisis")


def indicator_id(api: Client, crisis: str, prefix: str) -> str:
    """The full id of the one indicator of `crisis` the key may read whose id starts with `prefix`."""
    if not prefix:
        raise CliError("an indicator id (or a prefix of one) is needed")
    if whole(prefix):
        return prefix  # a crisis of 100,000 indicators is not listed for an id given in full
    return pick(prefix, _indicator_ids(api, crisis), "indicator", f" in crisis {crisis}")


def _indicator_ids(api: Client, crisis: str) -> Iterator[str]:
    offset = 0
    while True:
        page = api.get(f"/v1/crises/{crisis}/indicators?offset={offset}&limit={PAGE}")
        yield from (item["indicator_id"] for item in page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return
