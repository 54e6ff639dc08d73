"""What the fold wrote since the store's last flush: kept in memory, read before the file, written at once.

A store holds at most two batches: the one the fold is filling and the one the writer thread is putting
on disk. Reads look at both before the file, so the fold and the API never wait for the disk, and the
file only ever receives whole batches together with the positions they reflect.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from crisis.domain.book import IndicatorRecord, Outcome
from crisis.domain.crisis import CrisisState
from crisis.domain.envelope import Envelope

Checkpoint = tuple[str, dict[int, int], set[tuple[int, int]]]


@dataclass
class Shared:
    """An indicator written in this batch: its position (-1 when only changed, not added here)."""

    seq: int
    record: IndicatorRecord
    new: bool


@dataclass
class Batch:
    crises: dict[str, tuple[int, CrisisState]] = field(default_factory=dict)
    # (crisis, indicator id) -> the indicator as last written; by position for those added here, and the
    # ids touched per value (crisis, kind, canonical) for `live`.
    indicators: dict[tuple[str, str], Shared] = field(default_factory=dict)
    added: dict[tuple[str, int], str] = field(default_factory=dict)
    by_value: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    # (table, crisis, position) -> envelope, for the timeline and the actions.
    entries: dict[tuple[str, str, int], Envelope] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    # scope -> (position, digest, envelope) of the first request's events written here.
    requests: dict[str, list[tuple[int, str, Envelope]]] = field(default_factory=dict)
    checkpoint: Checkpoint | None = None
    # Whether everything written so far is covered by the checkpoint: only such a batch goes to disk.
    sealed: bool = True
    size: int = 0
    # Values were erased in this batch: written without waiting, then the WAL emptied (crisis.crypto).
    wipe: bool = False
    # When its first write was made (time.monotonic): a batch waits at most so long for more.
    started: float = field(default_factory=time.monotonic)

    def __bool__(self) -> bool:
        return self.size > 0 or self.checkpoint is not None

    def put_indicator(self, crisis_id: str, seq: int, record: IndicatorRecord, new: bool) -> None:
        key = (crisis_id, record.data.indicator_id)
        earlier = self.indicators.get(key)
        if earlier is not None:
            seq, new = earlier.seq, earlier.new
        else:
            d = record.data
            self.by_value.setdefault((crisis_id, str(d.kind), d.canonical), []).append(d.indicator_id)
        if new:
            self.added[(crisis_id, seq)] = record.data.indicator_id
        self.indicators[key] = Shared(seq, record, new)
        self.wrote()

    def wrote(self) -> None:
        if not self.size:
            self.started = time.monotonic()
        self.size += 1
        self.sealed = False


def detached(record: IndicatorRecord) -> IndicatorRecord:
    """A copy the fold may change while the original is being written (sightings are its one list)."""
    return replace(record, sightings=list(record.sightings))
