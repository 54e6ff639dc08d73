"""Pages of the folded state: a stable order, a reader's audience, and an opaque cursor to continue.

Every list the API serves is read here, one page at a time, so no answer and no client holds a whole
crisis. Indicators and actions are in log order (oldest first) and their cursor is a position in that
order, which only grows: a page read while the fold moves on still continues exactly where it stopped.
Crises are newest first; their cursor is the last crisis shown (creation time, then id).

A cursor says where to continue, never what lies there: it holds a position the reader was given, so it
tells nobody about anything outside their audience.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from crisis.domain import audience
from crisis.domain.book import Book, CrisisRecord, IndicatorRecord
from crisis.domain.crisis import CrisisState
from crisis.domain.enums import Mode, Status
from crisis.domain.envelope import Envelope
from crisis.domain.events import ActionReported
from crisis.domain.principal import Principal

T = TypeVar("T")

MAX_LIMIT = 10_000


class BadCursor(ValueError):
    """A cursor this server did not hand out (or one for another list)."""


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    # Where the next page starts; None when this page reached the end of the list as it stands.
    next: str | None


def encode(kind: str, position: str) -> str:
    raw = f"{kind}:{position}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str | None) -> str | None:
    """The position inside a cursor of this `kind`; None for no cursor (the first page)."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadCursor("the cursor is not one this API handed out") from exc
    found, sep, position = raw.partition(":")
    if not sep or found != kind:
        raise BadCursor(f"the cursor does not continue a list of {kind}")
    return position


def _offset(kind: str, cursor: str | None) -> int:
    position = decode(kind, cursor)
    if position is None:
        return 0
    if not position.isdigit():
        raise BadCursor("the cursor is not one this API handed out")
    return int(position)


def _scan(
    count: int, at: Callable[[int], T], start: int, limit: int, keep: Callable[[T], bool], kind: str
) -> Page[T]:
    """Up to `limit` kept items from position `start` of an append-only sequence of `count` items."""
    items: list[T] = []
    position = start
    while position < count and len(items) < limit:
        item = at(position)
        position += 1
        if keep(item):
            items.append(item)
    return Page(items, encode(kind, str(position)) if position < count else None)


def indicators(
    record: CrisisRecord,
    reader: Principal | None,
    cursor: str | None,
    limit: int,
    keep: Callable[[IndicatorRecord], bool] = lambda _r: True,
) -> Page[IndicatorRecord]:
    """A page of the crisis's indicators `reader` may read (None reads all), in the order they were shared."""
    mode = record.state.mode
    table = record.indicators

    def readable(r: IndicatorRecord) -> bool:
        return (reader is None or r.readable_by(reader, mode)) and keep(r)

    return _scan(len(table), table.at, _offset("indicators", cursor), limit, readable, "indicators")


def actions(
    record: CrisisRecord, reader: Principal | None, cursor: str | None, limit: int
) -> Page[tuple[Envelope, ActionReported]]:
    """A page of the crisis's accepted action reports `reader` may read, in log order.

    An action is shown only with its indicator: the id of an indicator outside the reader's audience
    must not leak through a report about it.
    """
    mode = record.state.mode

    def readable(item: tuple[Envelope, ActionReported]) -> bool:
        env, data = item
        if reader is None:
            return True
        indicator = record.indicators.get(data.indicator_id)
        return (
            audience.may_read_event(reader, env)
            and indicator is not None
            and indicator.readable_by(reader, mode)
        )

    return _scan(
        len(record.actions),
        record.actions.__getitem__,
        _offset("actions", cursor),
        limit,
        readable,
        "actions",
    )


def _crisis_key(state: CrisisState) -> tuple[datetime, str]:
    return state.created_at, state.id


def crises(
    book: Book,
    reader: Principal,
    cursor: str | None,
    limit: int,
    status: Status | None = None,
    mode: Mode | None = None,
) -> Page[CrisisState]:
    """A page of the crises `reader` may read, newest first (ties by id), optionally by status and mode."""
    after = decode("crises", cursor)
    start: tuple[datetime, str] | None = None
    if after is not None:
        stamp, sep, crisis_id = after.partition("|")
        try:
            start = (datetime.fromisoformat(stamp), crisis_id)
        except ValueError as exc:
            raise BadCursor("the cursor is not one this API handed out") from exc
        if not sep or start[0].tzinfo is None:
            raise BadCursor("the cursor is not one this API handed out")
    found = sorted(
        (
            r.state
            for r in list(book.crises.values())
            if audience.may_read_crisis(reader, r.state)
            and (status is None or r.state.status is status)
            and (mode is None or r.state.mode is mode)
        ),
        key=_crisis_key,
        reverse=True,
    )
    if start is not None:
        found = [s for s in found if _crisis_key(s) < start]
    items = found[:limit]
    more = len(found) > limit
    last = items[-1] if items else None
    return Page(
        items, encode("crises", f"{last.created_at.isoformat()}|{last.id}") if more and last else None
    )


def walk(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a paged list, one page in memory at a time."""
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if page.next is None:
            return
        cursor = page.next
