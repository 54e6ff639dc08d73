"""Reading the whole log through the bus, as published: what `crisis audit verify` checks.

It reads the topic directly (the bus port, the same Kafka settings as the servers), not through the API:
the API serves folded state, which has already left refused events out, and a verifier must see every
record the log holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from crisis.audit.verify import Record
from crisis.bus.base import Bus

_POLL_S = 0.5


async def records(bus: Bus) -> AsyncIterator[Record]:
    """Every record of the log in order, from its start to its end as of the first fetch that reaches it."""
    async with bus.reader(None) as reader:
        while True:
            batch = await reader.next_batch(_POLL_S)
            for item in batch:
                yield Record(item.envelope, item.partition, item.offset)
            if reader.caught_up():
                return
