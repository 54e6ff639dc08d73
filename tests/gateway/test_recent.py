"""The recent-items window and the resume plan, with plain values: no socket, no event loop."""

from __future__ import annotations

import pytest

from crisis.bus.base import Topology
from crisis.domain.enums import EventType, Mode, Tlp
from crisis.gateway import cursor as cursors
from crisis.gateway.frames import text_frame
from crisis.gateway.protocol import Facts
from crisis.gateway.recent import ITEM_OVERHEAD, Item, Recent
from crisis.gateway.resume import plan

FACTS = Facts("c1", EventType.INDICATOR_SHARED, None, Tlp.AMBER, Mode.LIVE, "bka", ())
ORIGIN = cursors.origin("cluster", "topic")


def item(partition: int, offset: int, vector: tuple[int, ...]) -> Item:
    cursor = cursors.encode(ORIGIN, vector)
    payload = b'{"id":"e","cursor":"' + cursor.encode() + b'"}'
    frame = text_frame(payload)
    return Item(partition, offset, vector, cursor, frame, len(frame) - len(payload), FACTS)


def fold(recent: Recent, order: list[tuple[int, int]], partitions: int = 2) -> list[Item]:
    """Items as the fan-out appends them: each with the cut right after it."""
    vector, out = [0] * partitions, []
    for p, offset in order:
        vector[p] = offset + 1
        out.append(item(p, offset, tuple(vector)))
        recent.append(out[-1])
    return out


def test_an_item_keeps_its_prefix_inside_its_frame() -> None:
    it = item(0, 0, (1, 0))
    assert it.prefix == b'{"id":"e","cursor":"'


def test_a_window_over_budget_drops_the_oldest_and_says_where_it_is_complete() -> None:
    one = item(0, 0, (1, 0)).size
    recent = Recent([0, 0], budget=3 * one)
    items = fold(recent, [(0, 0), (1, 0), (0, 1), (0, 2), (1, 1)])
    assert len(recent) == 3
    assert recent.slice(recent.first, recent.end) == items[2:]
    assert recent.start == [1, 1]  # (0, 0) and (1, 0) went
    assert recent.covers([1, 1], [3, 2])
    assert not recent.covers([0, 1], [3, 2])
    # A partition with nothing left to deliver needs no coverage.
    assert recent.covers([3, 0], [3, 0])


def test_first_after_finds_the_first_item_a_cut_has_not_seen() -> None:
    recent = Recent([0, 0], budget=100 * (ITEM_OVERHEAD + 100))
    fold(recent, [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)])
    assert recent.first_after([0, 0]) == 0
    assert recent.first_after([1, 1]) == 2
    assert recent.first_after([2, 1]) == 3
    assert recent.first_after([3, 2]) == 5
    # A cut from another gateway's read order: only items it has seen everywhere are skipped.
    assert recent.first_after([3, 0]) == 1


def test_an_evicted_slice_is_refused() -> None:
    one = item(0, 0, (1, 0)).size
    recent = Recent([0], budget=2 * one)
    fold(recent, [(0, 0), (0, 1), (0, 2)], partitions=1)
    assert recent.first == 1
    with pytest.raises(IndexError):
        recent.slice(0, 3)


def test_a_zero_budget_holds_nothing_and_covers_only_from_the_live_cut() -> None:
    recent = Recent([0], budget=0)
    fold(recent, [(0, 0), (0, 1)], partitions=1)
    assert len(recent) == 0
    assert recent.start == [2]
    assert not recent.covers([0], [2])
    assert recent.covers([2], [2])


TOPOLOGY = Topology("cluster", "topic", 3, {0: 0, 1: 0, 2: 5})


def test_a_cursor_beyond_the_end_restarts_from_the_earliest_with_a_gap() -> None:
    ends = {0: 10, 1: 10, 2: 10}
    start = plan(cursors.Cursor(ORIGIN, (10, 11, 0)), ORIGIN, TOPOLOGY, ends)
    assert start.offsets == (0, 0, 5)
    assert start.gap is not None
    assert b'"reason":"beyond_end"' in start.gap


def test_a_cursor_at_the_end_is_no_gap() -> None:
    start = plan(cursors.Cursor(ORIGIN, (10, 10, 10)), ORIGIN, TOPOLOGY, {0: 10, 1: 10, 2: 10})
    assert start == start.__class__((10, 10, 10), None)
