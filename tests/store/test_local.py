"""Where `crisis up` and `crisis serve` keep their local store when no CRISIS_STATE_DIR names one."""

from __future__ import annotations

from pathlib import Path

from crisis.config import Settings
from crisis.store.local import with_local_store
from crisis.store.sqlite import SqliteStorage


def test_each_process_gets_a_store_of_its_own_under_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(keys_file=tmp_path / "keys.json", kafka_bootstrap="127.0.0.1:9092")
    first = with_local_store(settings, "api").state_dir
    assert first == tmp_path / "state" / "api"
    held = SqliteStorage(first)
    try:
        # Another process on the same data directory takes the next free one.
        assert with_local_store(settings, "api").state_dir == tmp_path / "state" / "api-2"
    finally:
        held.close()
    assert with_local_store(settings, "api").state_dir == first


def test_a_named_directory_is_kept_and_the_store_can_be_turned_off(tmp_path: Path) -> None:
    named = Settings(keys_file=tmp_path / "keys.json", kafka_bootstrap="h:1", state_dir=tmp_path / "mine")
    assert with_local_store(named, "api").state_dir == tmp_path / "mine"
    off = named.model_copy(update={"state_store": False})
    assert with_local_store(off, "api").state_dir is None
    memory = Settings(keys_file=tmp_path / "keys.json", bus_url="memory://")
    assert with_local_store(memory, "up").state_dir is None
