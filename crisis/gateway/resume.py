"""Exact resume: deliver what a client missed between its cursor and the live cut, from the log itself.

The client is attached for live events at the current cut V first (no await in between, so nothing slips),
then a reader of its own delivers offsets [start_p, V_p) of every partition, with the same selection rules
and the ledger's verdicts; the live frames held meanwhile follow. A cursor older than retention, or from
another log, gets a `gap` message saying what is missing before the stream goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from crisis.bus.base import Bus, Delivered, Topology
from crisis.domain.book import Book
from crisis.gateway import cursor as cursors
from crisis.gateway import protocol
from crisis.gateway.fanout import Subscriber, facts_of
from crisis.gateway.frames import event_frame, event_prefix

# How long a reader waits for a fetch while catching up; an empty answer within it is not an error.
_FETCH_WAIT_S = 0.2


@dataclass(frozen=True, slots=True)
class Start:
    """Where a resumed stream continues, and the gap message to send first (None when nothing is missing)."""

    offsets: tuple[int, ...]
    gap: bytes | None


def plan(cursor: cursors.Cursor, origin: bytes, topology: Topology) -> Start:
    """Pure: compare the cursor with what the log still holds."""
    earliest = tuple(topology.earliest.get(p, 0) for p in range(topology.partitions))
    if cursor.origin != origin or len(cursor.offsets) > topology.partitions:
        resume = cursors.encode(origin, earliest)
        detail = (
            "the cursor was issued for another cluster or topic; the stream restarts from the earliest "
            "retained event"
        )
        return Start(earliest, protocol.gap("foreign_cursor", None, resume, detail))
    offsets = tuple(max(cursor.next_offset(p), earliest[p]) for p in range(topology.partitions))
    missing = [
        protocol.Missing(p, cursor.next_offset(p), earliest[p])
        for p in range(topology.partitions)
        if cursor.next_offset(p) < earliest[p]
    ]
    if not missing:
        return Start(offsets, None)
    detail = "events older than the log's retention are gone; the stream continues from the earliest kept"
    return Start(offsets, protocol.gap("retention", missing, cursors.encode(origin, offsets), detail))


class Fell(Exception):
    """The client closed, or did not read fast enough, while catching up."""


@dataclass
class CatchUp:
    """Reads [start, until) for one subscriber and writes it with flow control (this path may await)."""

    bus: Bus
    book: Book
    duplicates: Collection[tuple[int, int]]
    origin: bytes
    limit: int
    drain_timeout: float
    open_state: object

    async def run(self, sub: Subscriber, start: Sequence[int], until: Sequence[int]) -> None:
        """Raises Fell when the client went away or fell behind; `sub.cursor` is then its last cut."""
        size = max(len(start), len(until))
        position, until = _pad(start, size), _pad(until, size)
        if all(position[p] >= until[p] for p in range(size)):
            return
        async with self.bus.reader(start=dict(enumerate(position))) as reader:
            while any(position[p] < until[p] for p in range(size)):
                batch = await reader.next_batch(_FETCH_WAIT_S)
                self._check(sub)
                self._write(sub, batch, position, until)
                await self._drain(sub)
                if not batch and reader.caught_up():
                    break  # records the reader skipped (not our events) never reach `until` exactly

    def _write(
        self, sub: Subscriber, batch: list[Delivered], position: list[int], until: Sequence[int]
    ) -> None:
        frames: list[bytes] = []
        outcomes = self.book.outcomes
        for item in batch:
            p, offset = item.partition, item.offset
            if p >= len(until) or offset >= until[p] or offset < position[p]:
                continue  # at or past the live cut: the held live frames bring it
            position[p] = offset + 1
            env = item.envelope
            outcome = outcomes.get(env.id)
            if outcome is None or not outcome.accepted or (p, offset) in self.duplicates:
                continue
            if not protocol.admits(sub.principal, sub.filter, facts_of(env, self.book)):
                continue
            sub.cursor = cursors.encode(self.origin, position)
            frames.append(event_frame(event_prefix(env), sub.cursor))
        if frames:
            sub.transport.write(b"".join(frames))

    def _check(self, sub: Subscriber) -> None:
        if not sub.attached or sub.proto.state is not self.open_state:
            raise Fell("the client went away while catching up")

    async def _drain(self, sub: Subscriber) -> None:
        """Wait until the client has read half its buffer; a client that cannot is slow."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_timeout
        while sub.transport.get_write_buffer_size() > self.limit // 2:
            if loop.time() > deadline:
                raise Fell("the client did not read its catch-up in time")
            await asyncio.sleep(0.005)
            self._check(sub)


def _pad(vector: Sequence[int], size: int) -> list[int]:
    return [*vector, *([0] * (size - len(vector)))]
