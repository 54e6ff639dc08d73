"""Backfill: a subscription that starts at the beginning of its crises' history, then goes live.

It runs as a resume from the start of the retained log (resume.py), so the history and the live events
that follow arrive each exactly once, in the log's order, with the same selection rules. A subscription
naming crises gets their whole history, closed or not; one for "all crises" skips the crises already
closed when it starts (a bot started mid-crisis wants the indicators it can still act on).
"""

from __future__ import annotations

from crisis.domain.book import Book
from crisis.domain.enums import Status
from crisis.gateway.protocol import Filter


def backfill_skips(book: Book, f: Filter) -> frozenset[str]:
    """The crises whose history a backfill with filter `f` leaves out."""
    if f.crises is not None:
        return frozenset()
    return frozenset(cid for cid, record in book.crises.items() if record.state.status is Status.CLOSED)
