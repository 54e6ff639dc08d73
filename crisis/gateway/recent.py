"""The gateway's recent events, as the frames it built for them: what a resuming client catches up from.

The ledger decodes and folds every event once; the fan-out turns each deliverable one into an `Item` (its
frame, the cut after it, its selection facts) and appends it here. A catch-up then costs a rule check and a
slice of shared bytes per event instead of a Kafka consumer and a decode per client. Bounded by a byte
budget: the oldest items go first, and `start` says from where on each partition the window is complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from crisis.gateway.protocol import Facts

# Per item beyond its frame: the object, its vector tuple, its cursor text and its facts (measured with
# tracemalloc at ~460 bytes for six partitions).
ITEM_OVERHEAD = 480
# Evicted items are cut from the list's head in blocks: one memmove per block, not per item.
_COMPACT_EVERY = 4096


@dataclass(slots=True)
class Item:
    """One deliverable event as sent: where it sits, the cut after it, its frame and what the rules read."""

    partition: int
    offset: int
    vector: tuple[int, ...]
    cursor: str
    frame: bytes
    head: int  # where the CloudEvent's JSON starts in `frame`
    facts: Facts

    @property
    def prefix(self) -> bytes:
        """The event up to its cursor's value (see frames.event_prefix), for a frame with another cursor."""
        return self.frame[self.head : len(self.frame) - len(self.cursor) - 2]

    @property
    def size(self) -> int:
        return len(self.frame) + ITEM_OVERHEAD


class Recent:
    """Items in the ledger's fold order, numbered by a sequence that only grows."""

    def __init__(self, start: Sequence[int], budget: int) -> None:
        # start[p]: every deliverable event at or after this offset of partition p is held (until `end`).
        self.start = list(start)
        self.budget = budget
        self.first = 0  # sequence number of the oldest item held
        self.end = 0  # sequence number the next item gets
        self.bytes = 0
        self._items: list[Item] = []
        self._base = 0  # sequence number of self._items[0]

    def __len__(self) -> int:
        return self.end - self.first

    def append(self, item: Item) -> None:
        if self.budget <= 0:
            self.passed(item.partition, item.offset)
            return
        self._items.append(item)
        self.end += 1
        self.bytes += item.size
        while self.bytes > self.budget and self.first < self.end:
            self._evict()

    def forget(self) -> None:
        """Let go of every item held (an erasure made values in them unrecoverable): catch-ups from
        before now read the log, which yields them erased."""
        while self.first < self.end:
            self._evict()
        del self._items[:]
        self._base = self.first

    def passed(self, partition: int, offset: int) -> None:
        """An event not kept (no window at all): nothing up to it can be served from here."""
        self._at_least(partition, offset + 1)

    def _evict(self) -> None:
        item = self._items[self.first - self._base]
        self.first += 1
        self.bytes -= item.size
        self._at_least(item.partition, item.offset + 1)
        if self.first - self._base >= _COMPACT_EVERY:
            del self._items[: self.first - self._base]
            self._base = self.first

    def _at_least(self, partition: int, offset: int) -> None:
        if partition >= len(self.start):
            self.start.extend([0] * (partition + 1 - len(self.start)))
        if self.start[partition] < offset:
            self.start[partition] = offset

    def covers(self, cut: Sequence[int], until: Sequence[int]) -> bool:
        """True when every event after `cut` and before `until` that was deliverable is held here."""
        for p, end in enumerate(until):
            begin = cut[p] if p < len(cut) else 0
            if begin < end and begin < (self.start[p] if p < len(self.start) else 0):
                return False
        return True

    def first_after(self, cut: Sequence[int]) -> int:
        """The sequence number of the first item the cut has not seen (cuts grow along the fold order)."""
        lo, hi = self.first, self.end
        while lo < hi:
            mid = (lo + hi) // 2
            if within(self._items[mid - self._base].vector, cut):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def slice(self, begin: int, stop: int) -> list[Item]:
        """Items [begin, stop); raises IndexError when `begin` was already evicted."""
        if begin < self.first:
            raise IndexError(begin)
        return self._items[begin - self._base : stop - self._base]


def within(vector: Sequence[int], cut: Sequence[int]) -> bool:
    """True when `cut` is at or past `vector` on every partition."""
    return all(v <= (cut[p] if p < len(cut) else 0) for p, v in enumerate(vector))
