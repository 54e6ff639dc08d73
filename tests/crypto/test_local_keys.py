"""Keys kept in a key file beside the local store: a restart reads only what is new, memory holds only
recent keys, a destroyed key leaves the file at once and never comes back, a lost or foreign file is
built again from the source of truth (the keys directory, the keys topic)."""

from __future__ import annotations

import base64
import sqlite3
import uuid
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from crisis.bus.kafka_keys import KafkaKeyring
from crisis.config import Settings
from crisis.crypto.keycache import FILE_NAME, KeyFile
from crisis.crypto.keyring import FileKeyring
from crisis.domain.sensitive import Covers

from .test_kafka_keys import topic_records, write_raw


def key_file(state: Path, directory: Path) -> KeyFile:
    """The key file `crisis serve` opens for a keys directory (crisis.crypto.adapters)."""
    return KeyFile(state, f"files:{directory.resolve()}")


def on_disk(state: Path) -> bytes:
    """The key file and whatever SQLite keeps beside it (its write-ahead log)."""
    return b"".join(p.read_bytes() for p in state.iterdir() if p.name.startswith(FILE_NAME))


def one(kid: str) -> Covers:
    return Covers(kid.partition("/")[0], frozenset({kid}))


def restored(logs: list[dict[str, object]]) -> dict[str, object]:
    [event] = [e for e in logs if e["event"] == "keys_restored"]
    return event


async def test_a_restart_reads_only_the_key_files_made_while_it_was_down(tmp_path: Path) -> None:
    directory, state = tmp_path / "data-keys", tmp_path / "state"
    ring = FileKeyring(directory, key_file(state, directory))
    await ring.create(["c1", "c1/i1", "c1/i2"])
    await ring.create(["c1/i3"])
    old = {kid: ring.get(kid) for kid in ("c1", "c1/i1", "c1/i2", "c1/i3")}
    assert ring.local is not None
    ring.local.close()
    # Another process makes keys while this one is down.
    other = FileKeyring(directory)
    await other.create(["c2", "c2/i1"])
    with capture_logs() as logs:
        again = FileKeyring(directory, key_file(state, directory))
    assert restored(logs) == {
        "event": "keys_restored",
        "log_level": "info",
        "files_known": 2,
        "files_read": 1,
    }
    assert again.get("c2/i1") == other.get("c2/i1") is not None
    # The two files taken in before are not read again: their keys come from the key file.
    assert {kid: again.get(kid) for kid in old} == old
    assert again.keys.keys() == {"c2/i1", *old}  # looked up: in memory now


async def test_more_keys_than_memory_holds_are_all_readable_and_those_just_made_are_in_memory(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "data-keys"
    ring = FileKeyring(directory, key_file(tmp_path / "state", directory), cache=40)
    made = [f"c1/i{n}" for n in range(200)]
    for at in range(0, 200, 20):
        await ring.create(made[at : at + 20])
        # The write path seals a batch right after making its keys.
        assert all(kid in ring.keys for kid in made[at : at + 20])
    assert len(ring.keys) <= 40
    keys = {kid: ring.get(kid) for kid in made}
    assert all(key is not None for key in keys.values()) and len(set(keys.values())) == 200
    assert len(ring.keys) <= 40
    restarted = FileKeyring(directory)  # the directory is the source of truth
    assert {kid: restarted.get(kid) for kid in made} == keys


async def test_a_destroyed_key_leaves_memory_and_the_key_file_at_once_and_never_comes_back(
    tmp_path: Path,
) -> None:
    directory, state = tmp_path / "data-keys", tmp_path / "state"
    api = FileKeyring(directory, key_file(state, directory))
    await api.create(["c1", "c1/i1", "c1/i2"])
    key, kept = api.get("c1/i1"), api.get("c1/i2")
    assert key is not None and key in on_disk(state)
    stale = {p.name: p.read_text() for p in directory.glob("*.keys")}

    await api.destroy(one("c1/i1"))
    assert "c1/i1" not in api.keys and api.get("c1/i1") is None
    assert key not in on_disk(state) and base64.b64encode(key) not in b"".join(
        p.read_bytes() for p in directory.iterdir()
    )
    assert api.local is not None
    api.local.close()
    # A copy of the old batch turns up (a backup put back): the key file still says the key is gone.
    for name, text in stale.items():
        (directory / f"stale-{name}").write_text(text)
    again = FileKeyring(directory, key_file(state, directory))
    assert again.get("c1/i1") is None and again.get("c1/i2") == kept


async def test_forgetting_finds_the_keys_of_an_erasure_in_its_crisis_range_only(tmp_path: Path) -> None:
    directory = tmp_path / "data-keys"
    ring = FileKeyring(directory, key_file(tmp_path / "state", directory), cache=1)
    crisis = str(uuid.uuid4())
    # Ids that sort right beside the crisis's range: its own id with more after it.
    neighbour = f"{crisis}0"
    kids = [crisis, f"{crisis}/a", f"{crisis}/b", neighbour, f"{neighbour}/a", f"{crisis}-x"]
    await ring.create(kids)
    retention = Covers(crisis, None)
    assert sorted(ring.forget(retention)) == sorted([crisis, f"{crisis}/a", f"{crisis}/b"])
    assert [kid for kid in kids if ring.get(kid) is not None] == [neighbour, f"{neighbour}/a", f"{crisis}-x"]
    # An erasure of the whole crisis (crisis.domain.sensitive.erasure_covers) means what it meant.
    for kid in kids:
        assert retention(kid) == (kid == crisis or kid.startswith(f"{crisis}/"))
    assert not Covers(crisis, frozenset())(crisis)


@pytest.mark.parametrize("damage", ["unreadable", "foreign", "removed"])
async def test_a_lost_or_foreign_key_file_is_built_again_from_the_directory(
    tmp_path: Path, damage: str
) -> None:
    directory, state = tmp_path / "data-keys", tmp_path / "state"
    ring = FileKeyring(directory, key_file(state, directory))
    await ring.create(["c1", "c1/i1"])
    await ring.destroy(one("c1"))
    keys = {kid: ring.get(kid) for kid in ("c1", "c1/i1")}
    assert ring.local is not None
    ring.local.close()
    path = state / FILE_NAME
    if damage == "unreadable":
        path.write_bytes(b"not a database" * 100)
        for side in state.glob(f"{FILE_NAME}-*"):
            side.unlink()
    elif damage == "foreign":
        other = tmp_path / "other-keys"
        foreign = FileKeyring(other, key_file(state, other))
        await foreign.create(["c9"])
        assert foreign.local is not None
        foreign.local.close()
    else:
        path.unlink()
    again = FileKeyring(directory, key_file(state, directory))
    assert {kid: again.get(kid) for kid in keys} == keys == {"c1": None, "c1/i1": keys["c1/i1"]}
    assert again.get("c9") is None
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE name = 'source'").fetchone() == (
            f"files:{directory.resolve()}",
        )


@pytest.mark.kafka
async def test_a_restarted_kafka_keyring_reads_the_topic_from_where_its_key_file_stopped(
    settings: Settings, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    async with KafkaKeyring(settings, state_dir=state) as api:
        await api.create(["c1", "c1/x"])
        await api.create(["c1/y"])
        old = {kid: api.get(kid) for kid in ("c1", "c1/x", "c1/y")}
        await api.refresh()  # read back up to the end, as a running process does within a fetch
    async with KafkaKeyring(settings) as other:  # while the first is down
        await other.create(["c2/z"])
        z = other.get("c2/z")
    with capture_logs() as logs:
        async with KafkaKeyring(settings, state_dir=state, destroys=True) as again:
            # Read from the offset after the two records taken in: only the new one.
            assert restored(logs)["start"] == 2 and restored(logs)["read_to"] == 3
            assert again.get("c2/z") == z is not None
            assert {kid: again.get(kid) for kid in old} == old
            await again.destroy(one("c1/x"))
            assert again.get("c1/x") is None and old["c1/x"] not in on_disk(state)


@pytest.mark.kafka
async def test_a_destroyed_key_never_comes_back_from_a_stale_record_read_after_a_restart(
    settings: Settings, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    async with KafkaKeyring(settings, state_dir=state, destroys=True) as api:
        await api.create(["c1/x", "c1/y"])
        [(batch, original)] = await topic_records(settings)
        x, y = api.get("c1/x"), api.get("c1/y")
        await api.destroy(one("c1/x"))
        assert "c1/x" not in api.keys and api.get("c1/x") is None
        assert x is not None and x not in on_disk(state) and y is not None and y in on_disk(state)
    # A process behind writes the batch back, x included, while this one is down.
    await write_raw(settings, [(batch, original)])
    async with KafkaKeyring(settings, state_dir=state) as gateway:
        assert gateway.get("c1/x") is None and gateway.get("c1/y") == y
        assert x not in on_disk(state)
    # Built again from the topic's start without its key file: the marker keeps x gone.
    for path in state.glob(f"{FILE_NAME}*"):
        path.unlink()
    async with KafkaKeyring(settings, state_dir=state) as rebuilt:
        assert rebuilt.get("c1/x") is None and rebuilt.get("c1/y") == y


@pytest.mark.kafka
async def test_a_key_file_of_another_topic_is_built_again(settings: Settings, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = settings.model_copy(update={"kafka_topic": f"{settings.kafka_topic}-first"})
    async with KafkaKeyring(first, state_dir=state) as ring:
        await ring.create(["c1", "c1/x", "c1/y"])
        await ring.refresh()
    async with KafkaKeyring(settings) as other:
        await other.create(["c2"])
        c2 = other.get("c2")
    with capture_logs() as logs:
        async with KafkaKeyring(settings, state_dir=state) as ring:
            assert restored(logs)["start"] == 0
            assert ring.get("c1") is None and ring.get("c2") == c2 is not None
    assert restored(logs)["read_to"] == 1
