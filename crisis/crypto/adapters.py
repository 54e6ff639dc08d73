"""The keyring the bus calls for: memory for `memory://`, files beside the embedded log, a Kafka topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from crisis.config import Settings
from crisis.crypto.keyring import FileKeyring, Keyring, MemoryKeyring

DATA_KEYS_DIR = "data-keys"


@asynccontextmanager
async def open_keyring(settings: Settings, *, destroys: bool = False) -> AsyncIterator[Keyring]:
    """The keyring of the bus `settings.bus_target` names, open for the block. `destroys`: this process
    destroys keys (it runs the API), so on Kafka it also mends, from its start, any record of the keys
    topic that still holds a destroyed key."""
    url = settings.bus_target
    if url.startswith("memory://"):
        yield MemoryKeyring()
    elif settings.data_keys_dir is not None:
        yield FileKeyring(settings.data_keys_dir)
    elif settings.kafka_journal_dir is not None:
        yield FileKeyring(settings.kafka_journal_dir / DATA_KEYS_DIR)
    else:
        # Imported here so that the memory and embedded modes run without it.
        from crisis.bus.kafka_keys import KafkaKeyring

        bootstrap = urlsplit(url).netloc
        kafka = settings.model_copy(update={"kafka_bootstrap": bootstrap})
        async with KafkaKeyring(kafka, destroys=destroys) as keyring:
            yield keyring
