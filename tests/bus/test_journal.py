"""The embedded log's journal: what was appended survives, a torn tail is cut, holes replay as fillers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crisis.bus.journal import (
    FILLER_HEADER,
    JOURNAL_FILE,
    Entry,
    Journal,
    JournalError,
    by_partition,
    with_fillers,
)
from crisis.bus.kafka import KafkaBus, restore_journal
from tests.bus.test_contract import event, read_all


def entry(partition: int, offset: int, value: bytes = b"v") -> Entry:
    return Entry(
        partition, offset, 1_700_000_000_000 + offset, b"key", value, (("ce_id", b"id-%d" % offset),)
    )


def test_entries_survive_reopening_with_the_same_log_id(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "log").open()
    written = [entry(0, 0), entry(1, 0, b""), Entry(0, 1, 5, None, b"x" * 70_000, ())]
    journal.append(written[:2])
    journal.append(written[2:])
    journal.close()
    again = Journal(tmp_path / "log").open()
    assert list(again.entries()) == written
    assert again.log_id == journal.log_id
    assert (tmp_path / "log" / JOURNAL_FILE).stat().st_mode & 0o777 == 0o600


def test_a_torn_last_entry_is_cut_and_appending_goes_on(tmp_path: Path) -> None:
    journal = Journal(tmp_path).open()
    journal.append([entry(0, 0), entry(0, 1)])
    journal.close()
    path = tmp_path / JOURNAL_FILE
    whole = path.read_bytes()
    path.write_bytes(whole[:-3])  # a crash in the middle of the second entry
    journal = Journal(tmp_path).open()
    assert list(journal.entries()) == [entry(0, 0)]
    journal.append([entry(0, 1)])
    assert list(journal.entries()) == [entry(0, 0), entry(0, 1)]


def test_a_corrupt_entry_ends_the_readable_log(tmp_path: Path) -> None:
    journal = Journal(tmp_path).open()
    journal.append([entry(0, 0), entry(0, 1)])
    raw = bytearray((tmp_path / JOURNAL_FILE).read_bytes())
    raw[-1] ^= 0xFF
    (tmp_path / JOURNAL_FILE).write_bytes(bytes(raw))
    assert list(Journal(tmp_path).entries()) == [entry(0, 0)]


def test_a_journal_without_its_identity_is_refused(tmp_path: Path) -> None:
    Journal(tmp_path).open().append([entry(0, 0)])
    (tmp_path / "log-id").unlink()
    with pytest.raises(JournalError, match="identity"):
        Journal(tmp_path).open()


def test_a_new_directory_is_a_new_log(tmp_path: Path) -> None:
    assert Journal(tmp_path / "a").open().log_id != Journal(tmp_path / "b").open().log_id


def test_replay_order_puts_each_offset_once_and_fills_holes(tmp_path: Path) -> None:
    journal = Journal(tmp_path).open()
    # Two writers' acknowledgements may reach the journal out of offset order; a hole is an offset the
    # broker held but that never became durable.
    journal.append([entry(0, 3), entry(1, 0)])
    journal.append([entry(0, 0), entry(0, 1)])
    journal.append([entry(0, 1, b"again")])
    grouped = by_partition(journal)
    assert [e.offset for e in grouped[0]] == [0, 1, 3]
    assert grouped[0][1].value == b"v"
    replayed = list(with_fillers(grouped[0]))
    assert [e.offset for e in replayed] == [0, 1, 2, 3]
    assert replayed[2].headers == ((FILLER_HEADER, b"1"),) and replayed[2].value == b""


@pytest.mark.kafka
async def test_a_journaled_bus_restores_onto_a_fresh_topic_at_the_same_offsets(
    make_settings: Any, tmp_path: Path
) -> None:
    first = make_settings(kafka_journal_dir=tmp_path / "log")
    events = [event(f"crisis-{n % 3}", n) for n in range(30)]
    async with KafkaBus(first) as bus:
        positions = await bus.publish(events[:10]) + await bus.publish(events[10:])
        log_id = (await bus.describe()).log_id
    # Another topic stands in for the new, empty broker of the next start.
    second = make_settings(kafka_journal_dir=tmp_path / "log")
    assert await restore_journal(second) == 30
    async with KafkaBus(second) as bus:
        assert (await bus.describe()).log_id == log_id
        read = await read_all(bus, 30)
    assert {e.envelope.id: (e.partition, e.offset) for e in read} == {
        e.id: (p.partition, p.offset) for e, p in zip(events, positions, strict=True)
    }
    with pytest.raises(JournalError, match="not empty"):
        await restore_journal(second)
