"""The garbage collector's settings for a serving process (API, gateway, or both in `crisis up`).

A process holds its folded state as a large heap of long-lived small objects, and every batch of events it
reads or writes allocates ~100 objects per event more. With CPython's default thresholds (700, 10, 10) the
collector keeps rescanning that heap: measured with bench/ingest.py, an API process's CPU per 1,000
indicators fell from 227 to 134 ms with higher thresholds, and a gateway with no subscriber spent a sixth
of its event loop in collections started while aiokafka unpacked records. The first threshold counts objects
made and not yet freed: a few batches in flight hold over 50,000, and each collection then walks all of them
(~100 ms). Above what batches hold at once, a collection comes only with real garbage: the collector's CPU
fell from 1.5 s to 0.06 s over 40,000 indicators (bench/ingest.py --store).
"""

from __future__ import annotations

import gc
from typing import Final

GC_THRESHOLDS: Final = (500_000, 20, 100)


def tune() -> None:
    """The thresholds above, for the whole process: set before it starts reading the log."""
    gc.set_threshold(*GC_THRESHOLDS)


def settle() -> None:
    """Once started (the fold caught up): what exists now lives as long as the process, so the collector
    stops walking it."""
    gc.collect()
    gc.freeze()
