"""The fold's chain rule on plain values: a link to anything but the crisis's head is refused and forgotten,
so its writer can publish the same event id again on the new head; an accepted id is never taken twice."""

from __future__ import annotations

from crisis.domain import chain
from crisis.domain.book import Book
from tests.gateway.events import crisis_opened, indicator_shared


def test_a_stale_link_is_refused_without_recording_its_id_and_the_relinked_event_is_accepted() -> None:
    book = Book()
    opened = chain.stamp(crisis_opened(), chain.GENESIS)
    assert book.apply(opened).accepted
    assert opened.chainhash is not None and book.chain_head(opened.subject) == opened.chainhash

    first = chain.stamp(indicator_shared(opened, seq=1), opened.chainhash)
    racer = chain.stamp(indicator_shared(opened, seq=2), opened.chainhash)  # linked on the same head
    assert book.apply(first).accepted
    refused = book.apply(racer)
    assert (refused.accepted, refused.code) == (False, chain.CHAIN_CONFLICT)
    assert racer.id not in book.outcomes

    assert first.chainhash is not None
    relinked = chain.stamp(racer, first.chainhash)
    assert relinked.id == racer.id and book.apply(relinked).accepted
    assert book.chain_head(opened.subject) == relinked.chainhash

    # The first copy published again (a retry after an unknown outcome): a duplicate, not a second event.
    again = book.apply(first)
    assert again.duplicate and again.accepted
    assert len(book.crises[opened.subject].indicators) == 2


def test_an_unchained_event_is_judged_on_the_other_rules_and_the_next_links_on_the_genesis() -> None:
    book = Book()
    opened = chain.stamp(crisis_opened(), chain.GENESIS)
    assert book.apply(opened).accepted
    assert book.apply(indicator_shared(opened, seq=1)).accepted  # written by hand, no chain attributes
    # The head follows the last accepted event alone, as a process restored from its store sees it.
    assert book.chain_head(opened.subject) == chain.GENESIS


def test_a_digest_covers_the_link_and_the_data_but_not_itself() -> None:
    opened = crisis_opened()
    stamped = chain.stamp(opened, chain.GENESIS)
    assert chain.intact(stamped)
    assert not chain.intact(stamped.model_copy(update={"chainprev": "1" * 64}))
    assert not chain.intact(stamped.model_copy(update={"data": {**stamped.data, "x": 1}}))
    assert chain.stamp(opened, "1" * 64).chainhash != stamped.chainhash
