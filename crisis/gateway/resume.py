"""Exact resume: deliver what a client missed between its cursor and the live cut.

The client is attached for live events at the current cut V first (no await in between, so nothing slips),
then [start_p, V_p) of every partition is delivered with the same selection rules and the ledger's verdicts;
the live frames held meanwhile follow. What the gateway folded since it started (within a byte budget) is
served from its recent items: frames built once, shared by every resuming client, written in bounded chunks
that yield to the event loop, so live delivery and the API in the same process keep their pace. Older events
come from a Kafka reader of the client's own (a bounded number at a time), decoded a few hundred at a time,
until the recent items take over. A cursor older than retention, from another log, or beyond the end of
this log gets a `gap` message saying what is missing before the stream goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from crisis.bus.base import Bus, Delivered, Topology
from crisis.domain.book import Book
from crisis.gateway import cursor as cursors
from crisis.gateway import protocol
from crisis.gateway.fanout import Subscriber, facts_of
from crisis.gateway.frames import event_frame, event_prefix
from crisis.gateway.protocol import Facts
from crisis.gateway.recent import Item, Recent, within

# How long a reader waits for a fetch while catching up; an empty answer within it is not an error.
_FETCH_WAIT_S = 0.2
# Records decoded per step of a Kafka catch-up (~100-150 us each with its frame): ~10-15 ms a step.
_DECODE_STEP = 100
# Recent items looked at per step of a catch-up (~1-2 us each, a millisecond or so a step), then the loop
# runs everything else that is ready.
_RECENT_STEP = 500
# After each step a catch-up sleeps as long as the step took (at least this): whatever else is ready, live
# batches, API requests and the threads they run in (which need the GIL), goes first, and the catch-ups
# of one process take at most half of its loop. A chain of callbacks (a Kafka fetch, its fold, the
# fan-out) then waits for at most one step per hop, not for the whole catch-up.
_PAUSE_S = 0.001
# Distinct event facts remembered per catch-up (a few per crisis); past this the memo starts over.
_MAX_VERDICTS = 10_000


@dataclass(frozen=True, slots=True)
class Start:
    """Where a resumed stream continues, and the gap message to send first (None when nothing is missing)."""

    offsets: tuple[int, ...]
    gap: bytes | None


def plan(cursor: cursors.Cursor, origin: bytes, topology: Topology, ends: Mapping[int, int]) -> Start:
    """Pure: compare the cursor with what the log still holds (`ends`: each partition's next offset)."""
    earliest = tuple(topology.earliest.get(p, 0) for p in range(topology.partitions))
    if cursor.origin != origin or len(cursor.offsets) > topology.partitions:
        detail = (
            "the cursor was issued for another cluster or topic; the stream restarts from the earliest "
            "retained event"
        )
        return Start(earliest, protocol.gap("foreign_cursor", None, cursors.encode(origin, earliest), detail))
    if any(offset > ends.get(p, 0) for p, offset in enumerate(cursor.offsets)):
        # No event of this log was ever at that position: the log was reset or replaced (same cluster id
        # and topic name), or the cursor was made up. Waiting would deliver nothing, possibly forever.
        detail = (
            "the cursor points beyond the end of this log (a log that was reset or replaced); the stream "
            "restarts from the earliest retained event"
        )
        return Start(earliest, protocol.gap("beyond_end", None, cursors.encode(origin, earliest), detail))
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
    """Delivers [start, until) to one subscriber with flow control (this path may await)."""

    bus: Bus
    book: Book
    duplicates: Collection[tuple[int, int]]
    origin: bytes
    limit: int
    drain_timeout: float
    open_state: object
    recent: Recent
    readers: asyncio.Semaphore

    async def run(self, sub: Subscriber, start: Sequence[int], until: Sequence[int], end: int) -> None:
        """`end`: the recent items' end when `sub` was attached at `until`.

        Raises Fell when the client went away or fell behind; `sub.cursor` is then its last cut.
        """
        size = max(len(start), len(until))
        position, until = _pad(start, size), _pad(until, size)
        if all(position[p] >= until[p] for p in range(size)):
            return
        if not self.recent.covers(position, until):
            async with self.readers:
                await self._from_log(sub, position, until)
        if any(position[p] < until[p] for p in range(size)):
            await self._from_recent(sub, position, end)

    async def _from_recent(self, sub: Subscriber, floor: list[int], end: int) -> None:
        """Shared frames, in steps; a frame is rebuilt only for a cut ahead of this gateway's read order."""
        recent, seq = self.recent, self.recent.first_after(floor)
        principal, f, admits = sub.principal, sub.filter, protocol.admits
        # Events of one crisis mostly share their facts: the rules run once per distinct facts.
        verdicts: dict[Facts, bool] = {}
        ahead = False  # once an item's cut is past the floor everywhere, so are all later ones
        loop = asyncio.get_running_loop()
        while seq < end:
            self._check(sub)
            began = loop.time()
            stop = min(end, seq + _RECENT_STEP)
            try:
                items = recent.slice(seq, stop)
            except IndexError:
                raise Fell("the catch-up fell out of the gateway's recent events") from None
            seq = stop
            frames: list[bytes] = []
            for item in items:
                if item.offset < floor[item.partition]:
                    continue
                verdict = verdicts.get(item.facts)
                if verdict is None:
                    if len(verdicts) >= _MAX_VERDICTS:
                        verdicts.clear()
                    wanted = item.facts.crisis not in sub.skip and admits(principal, f, item.facts)
                    verdict = verdicts[item.facts] = wanted
                if not verdict:
                    continue
                if not ahead:
                    ahead = within(floor, item.vector)
                frames.append(item.frame if ahead else self._rebased(sub, item, floor))
                if ahead:
                    sub.cursor = item.cursor
            if frames:
                sub.transport.write(b"".join(frames))
            await _give_way(loop, began)
            await self._drain(sub)

    def _rebased(self, sub: Subscriber, item: Item, floor: Sequence[int]) -> bytes:
        vector = [max(v, f) for v, f in zip(_pad(item.vector, len(floor)), floor, strict=True)]
        sub.cursor = cursors.encode(self.origin, vector)
        return event_frame(item.prefix, sub.cursor)

    async def _from_log(self, sub: Subscriber, position: list[int], until: Sequence[int]) -> None:
        """Events older than the recent items, from Kafka, until the recent items hold the rest."""
        size = len(position)
        async with self.bus.reader(start=dict(enumerate(position))) as reader:
            loop = asyncio.get_running_loop()
            while any(position[p] < until[p] for p in range(size)):
                began = loop.time()
                batch = await reader.next_batch(_FETCH_WAIT_S, _DECODE_STEP)
                self._check(sub)
                self._write(sub, batch, position, until)
                await _give_way(loop, began)
                await self._drain(sub)
                if self.recent.covers(position, until):
                    return
                if not batch and reader.caught_up():
                    return  # records the reader skipped (not our events) never reach `until` exactly

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
            if env.subject in sub.skip:
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


async def _give_way(loop: asyncio.AbstractEventLoop, began: float) -> None:
    await asyncio.sleep(max(_PAUSE_S, min(loop.time() - began, _FETCH_WAIT_S)))


def _pad(vector: Sequence[int], size: int) -> list[int]:
    return [*vector, *([0] * (size - len(vector)))]
