"""The key stores: a key made is kept and shared; a destroyed key is gone from memory and from disk."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from crisis.config import Settings
from crisis.crypto.keyring import FileKeyring, MemoryKeyring


def _on_disk(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.iterdir())


async def test_a_file_keyring_keeps_keys_for_every_process_and_destroys_them_by_rewriting(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "data-keys"
    one, two = FileKeyring(directory), FileKeyring(directory)
    await one.create(["c1", "c1/i1", "c1/i2", "c2"])
    await one.create(["c1/i3"])  # another batch, another file
    key = one.get("c1/i1")
    assert key is not None and len(key) == 32
    assert two.get("c1/i1") is None
    await two.refresh()
    assert two.get("c1/i1") == key and two.get("c1/i3") is not None
    await one.create(["c1/i1"])  # kept, not replaced
    assert one.get("c1/i1") == key
    assert len(list(directory.glob("*.keys"))) == 2

    await two.destroy(lambda kid: kid == "c1/i1")
    assert two.get("c1/i1") is None
    assert base64.b64encode(key) not in _on_disk(directory)
    # No other copy beside them: temporary files are renamed into place, replaced files are removed.
    assert {p.suffix for p in directory.iterdir()} == {".keys", ""}
    restarted = FileKeyring(directory)
    assert restarted.get("c1/i1") is None and restarted.get("c1/i2") is not None
    await one.refresh()
    assert one.get("c1/i2") is not None

    await one.destroy(lambda kid: kid == "c1" or kid.startswith("c1/"))
    assert FileKeyring(directory).keys.keys() == {"c2"}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in directory.glob("*.keys"))


async def test_forget_drops_a_key_from_memory_at_once() -> None:
    ring = MemoryKeyring()
    await ring.create(["c1", "c1/i1"])
    assert ring.forget(lambda kid: kid.startswith("c1/")) == ["c1/i1"]
    assert ring.get("c1/i1") is None and ring.get("c1") is not None


@pytest.mark.kafka
async def test_a_kafka_keyring_shares_keys_through_its_compacted_topic_and_destroys_them(
    settings: Settings,
) -> None:
    from crisis.bus.kafka_keys import KafkaKeyring

    async with KafkaKeyring(settings) as one:
        await one.create(["c1", "c1/i1"])
        key = one.get("c1/i1")
        async with KafkaKeyring(settings) as two:
            assert two.get("c1/i1") == key
            await one.destroy(lambda kid: kid == "c1/i1")
            await two.refresh()
            assert two.get("c1/i1") is None and two.get("c1") is not None
        async with KafkaKeyring(settings) as three:
            assert three.get("c1/i1") is None and three.get("c1") == one.get("c1")
