"""The bus adapter a URL names: `memory://` or `kafka://HOST:PORT`, each imported only when chosen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from crisis.bus.base import Bus
from crisis.config import Settings


@asynccontextmanager
async def open_bus(settings: Settings) -> AsyncIterator[Bus]:
    """The bus `settings.bus_target` names, open for the block and closed after it."""
    url = settings.bus_target
    scheme = url.partition("://")[0]
    if scheme == "memory":
        from crisis.bus.memory import MemoryBus

        yield MemoryBus(partitions=settings.kafka_partitions, topic=settings.kafka_topic)
    elif scheme == "kafka":
        # Imported here so that a memory bus runs without aiokafka loaded.
        from crisis.bus.kafka import KafkaBus

        bootstrap = urlsplit(url).netloc
        async with KafkaBus(settings.model_copy(update={"kafka_bootstrap": bootstrap})) as bus:
            yield bus
    else:
        raise ValueError(
            "no bus named: set CRISIS_BUS_URL (kafka://HOST:PORT or memory://) or CRISIS_KAFKA_BOOTSTRAP"
        )
