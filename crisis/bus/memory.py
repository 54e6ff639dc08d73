"""The bus in memory: partitions and offsets like Kafka's, for unit tests and quick demos."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from crisis.bus.base import Delivered, Position, PublishError, Topology
from crisis.bus.codec import RawRecord, decode, encode
from crisis.domain.envelope import Envelope


class MemoryBus:
    """Keeps encoded records, so the memory path goes through the same codec as Kafka."""

    def __init__(self, partitions: int = 3, topic: str = "crisis.events", earliest: int = 0) -> None:
        self.topic = topic
        self.cluster_id = "memory"
        self._log: list[list[RawRecord]] = [[] for _ in range(partitions)]
        # Simulates retention: offsets below `earliest` are gone.
        self._earliest = {p: earliest for p in range(partitions)}
        self._changed = asyncio.Condition()
        self.available = True

    def _partition(self, key: bytes) -> int:
        return zlib.crc32(key) % len(self._log)

    async def publish(self, envelopes: Sequence[Envelope]) -> list[Position]:
        if not self.available:
            raise PublishError("memory bus is unavailable", [e.id for e in envelopes])
        positions = []
        for env in envelopes:
            record = encode(env)
            p = self._partition(record.key)
            self._log[p].append(record)
            positions.append(Position(p, len(self._log[p]) - 1))
        async with self._changed:
            self._changed.notify_all()
        return positions

    async def describe(self) -> Topology:
        return Topology(self.cluster_id, self.topic, len(self._log), dict(self._earliest), self.cluster_id)

    async def healthy(self) -> bool:
        return self.available

    def forget_before(self, offsets: Mapping[int, int]) -> None:
        """Drop records as retention would."""
        self._earliest.update(offsets)

    @asynccontextmanager
    async def reader(self, start: Mapping[int, int] | None = None) -> AsyncIterator[MemoryReader]:
        yield MemoryReader(self, dict(start or {}))


class MemoryReader:
    def __init__(self, bus: MemoryBus, start: dict[int, int]) -> None:
        self._bus = bus
        self._next = {p: max(start.get(p, 0), bus._earliest[p]) for p in range(len(bus._log))}

    def caught_up(self) -> bool:
        return all(self._next[p] >= len(log) for p, log in enumerate(self._bus._log))

    def behind(self) -> int:
        return sum(max(0, len(log) - self._next[p]) for p, log in enumerate(self._bus._log))

    def ends(self) -> dict[int, int]:
        return {p: len(log) for p, log in enumerate(self._bus._log)}

    async def next_batch(self, timeout: float, limit: int | None = None) -> list[Delivered]:
        if self.caught_up():
            async with self._bus._changed:
                # Checked again under the lock: a publish that notified while we waited for it is not lost.
                if self.caught_up():
                    try:
                        await asyncio.wait_for(self._bus._changed.wait(), timeout)
                    except TimeoutError:
                        return []
        batch: list[Delivered] = []
        room = limit if limit is not None else sum(len(log) for log in self._bus._log)
        for p, log in enumerate(self._bus._log):
            end = min(len(log), self._next[p] + max(room - len(batch), 0))
            for offset in range(self._next[p], end):
                record = log[offset]
                batch.append(Delivered(decode(record.value, record.headers), p, offset))
            self._next[p] = max(self._next[p], end)
        return batch
