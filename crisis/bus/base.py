"""The bus port: publish an envelope, read the log from a position. Adapters: memory, kafka."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from crisis.domain.envelope import Envelope


class PublishError(Exception):
    """The bus refused the write: it is not in the log."""

    def __init__(self, message: str, event_ids: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.event_ids = tuple(event_ids)


class PublishUnknown(PublishError):
    """The write may or may not be in the log (a timeout): retry with the same event ids."""


@dataclass(frozen=True, slots=True)
class Position:
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Delivered:
    """One event read from the log, with where it sits."""

    envelope: Envelope
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Topology:
    """What a reader needs to make and check resume cursors."""

    cluster_id: str
    topic: str
    partitions: int
    earliest: Mapping[int, int]
    # The log's own identity (kept with the log, not the broker): cursors from another log get a gap.
    log_id: str = ""


class Reader(Protocol):
    """Reads every partition of the topic in order, from a start position."""

    async def next_batch(self, timeout: float, limit: int | None = None) -> list[Delivered]:
        """Events fetched since the last call (empty after `timeout` seconds with nothing new).

        At most `limit` records are decoded per call when given: the rest wait for the next call, so a
        reader sharing the event loop never blocks it for a whole fetch's worth of decoding.
        """
        ...

    def ends(self) -> dict[int, int]:
        """The end of each partition (the next offset to be written) as of the last fetch."""
        ...

    def caught_up(self) -> bool:
        """True once every partition was read up to the high-watermark seen in the last fetch."""
        ...

    def behind(self) -> int:
        """Records in the log past this reader's position, per the last fetch's high-watermarks."""
        ...


class Bus(Protocol):
    async def publish(self, envelopes: Sequence[Envelope]) -> list[Position]:
        """Write events and return only once the broker acknowledged every one (acks=all)."""
        ...

    async def describe(self) -> Topology: ...

    def reader(self, start: Mapping[int, int] | None = None) -> AbstractAsyncContextManager[Reader]:
        """A reader from `start` (partition -> next offset); from the beginning when None."""
        ...

    async def healthy(self) -> bool:
        """True when the broker answers."""
        ...
