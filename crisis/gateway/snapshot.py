"""`state` messages: what a subscription without cursor gets first, one per matching crisis it may read."""

from __future__ import annotations

from dataclasses import replace

from crisis.domain.book import Book, CrisisRecord
from crisis.domain.enums import EventType, Status
from crisis.domain.principal import Principal
from crisis.gateway import protocol
from crisis.gateway.protocol import Facts, Filter


def states(book: Book, principal: Principal, f: Filter, cursor: str) -> list[bytes]:
    """Crises named by the filter (or, for "all crises", those not closed), oldest first.

    The crisis is shown whatever the type and kind filters say: it is the context of every event. Its
    indicators are not repeated here (a state message stays small whatever the crisis's size); they are
    listed by `GET /v1/crises/{id}/indicators`, and every one shared after `cursor` arrives as an event.
    """
    context = replace(f, types=None, kinds=None)
    records = sorted(book.crises.values(), key=lambda r: r.state.created_at)
    return [
        protocol.state(record.state.model_dump(mode="json"), cursor)
        for record in records
        if (f.crises is not None or record.state.status is not Status.CLOSED)
        and protocol.admits(principal, context, _facts(record))
    ]


def _facts(record: CrisisRecord) -> Facts:
    s = record.state
    return Facts(s.id, EventType.CRISIS_OPENED, None, s.tlp, s.mode, s.created_by, s.tlprecipients)
