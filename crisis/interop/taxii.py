"""TAXII 2.1 resources over a crisis's STIX objects: date added, filters, `added_after` and `next` paging.

Pure: takes the bundle the reader may read, returns envelopes and manifests. An object's date added is
when it entered the collection as it stands: its own `modified` (or `created`), never before the crisis
existed; the report, which lists every object, counts as added with the newest of them. Paging is
stable: objects are ordered by (date added, id) and `next` names the last one a page held, so a new object
never shifts a page a client is walking.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"


@dataclass(frozen=True, slots=True)
class Stored:
    added: datetime
    object: dict[str, Any]

    @property
    def key(self) -> tuple[datetime, str]:
        return self.added, str(self.object["id"])


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Stored]
    more: bool
    next: str | None


def timestamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parsed(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def stored(objects: Sequence[dict[str, Any]], opened: datetime) -> list[Stored]:
    """The collection's objects with their dates added, in paging order."""
    dated = [Stored(max(_parsed(o.get("modified") or o["created"]), opened), o) for o in objects]
    newest = max((s.added for s in dated), default=opened)
    dated = [Stored(newest, s.object) if s.object["type"] == "report" else s for s in dated]
    return sorted(dated, key=lambda s: s.key)


def token(item: Stored) -> str:
    raw = f"{timestamp(item.added)}|{item.object['id']}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(text: str) -> tuple[datetime, str]:
    """The (date added, id) a `next` token names; ValueError for anything this server did not write."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    added, sep, object_id = raw.partition("|")
    if not sep or "--" not in object_id:
        raise ValueError("not a next token of this collection")
    return _parsed(added), object_id


def page(
    items: Sequence[Stored],
    *,
    added_after: datetime | None = None,
    next_token: str | None = None,
    limit: int,
    types: frozenset[str] = frozenset(),
    ids: frozenset[str] = frozenset(),
) -> Page:
    """One page of objects; ValueError for a `next` token this server did not write."""
    after = _after(next_token) if next_token else None
    chosen = [
        s
        for s in items
        if (added_after is None or s.added > added_after)
        and (after is None or s.key > after)
        and (not types or s.object["type"] in types)
        and (not ids or s.object["id"] in ids)
    ]
    held = chosen[:limit]
    more = len(chosen) > limit
    return Page(held, more, token(held[-1]) if more else None)


def envelope(found: Page) -> dict[str, Any]:
    body: dict[str, Any] = {"more": found.more, "objects": [s.object for s in found.items]}
    if found.next:
        body["next"] = found.next
    return body


def manifest(found: Page) -> dict[str, Any]:
    records = [
        {
            "id": s.object["id"],
            "date_added": timestamp(s.added),
            "version": s.object.get("modified") or s.object["created"],
            "media_type": STIX_MEDIA_TYPE,
        }
        for s in found.items
    ]
    body: dict[str, Any] = {"more": found.more, "objects": records}
    if found.next:
        body["next"] = found.next
    return body


def date_headers(found: Page) -> dict[str, str]:
    if not found.items:
        return {}
    return {
        "X-TAXII-Date-Added-First": timestamp(found.items[0].added),
        "X-TAXII-Date-Added-Last": timestamp(found.items[-1].added),
    }
