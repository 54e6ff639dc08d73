"""The keyring the bus calls for: memory for `memory://`, files beside the embedded log, a Kafka topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from crisis.config import Settings
from crisis.crypto.keycache import KeyFile
from crisis.crypto.keyring import FileKeyring, Keyring, MemoryKeyring

DATA_KEYS_DIR = "data-keys"


@asynccontextmanager
async def open_keyring(
    settings: Settings, *, destroys: bool = False, state_dir: Path | None = None
) -> AsyncIterator[Keyring]:
    """The keyring of the bus `settings.bus_target` names, open for the block. `destroys`: this process
    destroys keys (it runs the API), so on Kafka it also mends, from its start, any record of the keys
    topic that still holds a destroyed key. `state_dir`: where the process keeps its local store, and so
    the key file of the keys it learned (crisis.crypto.keycache); None: every key in memory."""
    url = settings.bus_target
    if url.startswith("memory://"):
        yield MemoryKeyring()
        return
    directory = settings.data_keys_dir
    if directory is None and settings.kafka_journal_dir is not None:
        directory = settings.kafka_journal_dir / DATA_KEYS_DIR
    if directory is not None:
        local = None if state_dir is None else KeyFile(state_dir, f"files:{directory.resolve()}")
        try:
            yield FileKeyring(directory, local)
        finally:
            if local is not None:
                local.close()
        return
    # Imported here so that the memory and embedded modes run without it.
    from crisis.bus.kafka_keys import KafkaKeyring

    bootstrap = urlsplit(url).netloc
    kafka = settings.model_copy(update={"kafka_bootstrap": bootstrap})
    async with KafkaKeyring(kafka, destroys=destroys, state_dir=state_dir) as keyring:
        yield keyring
