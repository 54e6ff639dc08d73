"""The local store: the fold over it gives the verdicts and report the memory fold gives, and a process
restored from it continues exactly where the stored positions say."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crisis.domain import pages
from crisis.domain.book import Book
from crisis.domain.enums import EventType, Mode, Tlp
from crisis.domain.envelope import Envelope, source_for
from crisis.domain.report import build_report
from crisis.store.sqlite import SqliteStorage, StoreBusy
from tests.domain.test_report import CID, HUB, action, at, opened, shared, sighted


def events() -> list[Envelope]:
    retract = Envelope(
        id="e-retract",
        source=source_for("bka", "k2"),
        type=EventType.INDICATOR_RETRACTED,
        time=at(21),
        subject=CID,
        tlp=Tlp.AMBER,
        mode=Mode.LIVE,
        data={"indicator_id": "i3", "retracted_by": "bka"},
    )
    return [
        opened(),
        shared("i1", "1" * 32, 0),
        shared("i2", "2" * 32, 10),
        sighted("i1", "1" * 32, 12, org="hub"),
        action("vidshare", "i1", "received", 5),
        action("vidshare", "i1", "removed", 50),
        shared("i3", "3" * 32, 20),
        retract,
        action("tubeco", "i2", "not_found", 130),
        shared("i4", "3" * 32, 22),  # the value of a retracted indicator: a new indicator
        action("tubeco", "nope", "received", 131),  # refused: no such indicator
        shared("i1", "1" * 32, 0),  # the same event again: a duplicate
    ]


def outcomes(book: Book, envs: list[Envelope]) -> list[tuple[bool, str, str | None, bool]]:
    return [(o.accepted, o.code, o.sighting_of, o.duplicate) for o in map(book.apply, envs)]


def test_the_fold_over_the_store_gives_the_memory_folds_verdicts_and_report(tmp_path: Path) -> None:
    memory, stored = Book(), Book(SqliteStorage(tmp_path))
    envs = events()
    assert outcomes(stored, envs) == outcomes(memory, envs)
    assert build_report(stored.crises[CID], at(300)) == build_report(memory.crises[CID], at(300))
    assert build_report(stored.crises[CID], at(300), HUB) == build_report(memory.crises[CID], at(300), HUB)
    assert stored.crises[CID].indicators.live("md5", "3" * 32) == ["i4"]
    page = pages.indicators(stored.crises[CID], HUB, None, 3)
    assert [r.data.indicator_id for r in page.items] == ["i1", "i2", "i3"]
    rest = pages.indicators(stored.crises[CID], HUB, page.next, 3)
    assert [r.data.indicator_id for r in rest.items] == ["i4"] and rest.next is None


def test_a_restored_store_continues_where_its_checkpoint_says(tmp_path: Path) -> None:
    envs = events()
    memory = Book()
    expected = outcomes(memory, envs)
    store = SqliteStorage(tmp_path)
    first = outcomes(Book(store), envs[:6])
    store.checkpoint("log-1", {0: 6}, {(0, 3)})
    store.close()

    again = SqliteStorage(tmp_path)
    assert (again.log_id, again.positions(), again.duplicates()) == ("log-1", {0: 6}, {(0, 3)})
    restored = Book(again)
    assert restored.crises[CID].state == memory.crises[CID].state
    assert first + outcomes(restored, envs[6:]) == expected
    assert build_report(restored.crises[CID], at(300)) == build_report(memory.crises[CID], at(300))
    # What was folded before the restart is still known: a retried event gets its first verdict, and
    # a value shared before is found (before and after the filter of stored values is built).
    assert restored.apply(envs[1]).duplicate
    for _ in range(2):
        assert restored.crises[CID].indicators.live("md5", "1" * 32) == ["i1"]
        assert restored.crises[CID].indicators.live("md5", "f" * 32) == []
        again.warm()  # as the ledger does once caught up: the filter is built on the writer thread
        again.checkpoint("log-1", {0: 6}, {(0, 3)})
        again.commit()  # written after the filter's scan, which is done by now


def test_the_filter_of_stored_values_is_built_once_the_process_is_warm(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path)
    assert store.values.scanned  # an empty file: nothing to scan, an unseen value costs no query
    assert not store.values.may_hold((CID, "md5", "f" * 32))
    outcomes(Book(store), events()[:3])
    store.checkpoint("log-1", {0: 3}, set())
    store.close()

    again = SqliteStorage(tmp_path)
    held, unseen = (CID, "md5", "1" * 32), (CID, "md5", "f" * 32)
    # Until the scan has run (put off until the ledger has caught up), every value may be held.
    assert not again.values.scanned
    assert again.values.may_hold(held) and again.values.may_hold(unseen)
    again.warm()
    again.checkpoint("log-1", {0: 3}, set())
    again.commit()  # the writer thread runs the scan first
    assert again.values.may_hold(held) and not again.values.may_hold(unseen)
    assert again.values.scanned
    again.close()


def test_what_a_crash_caught_unwritten_is_forgotten_and_a_reset_forgets_all(tmp_path: Path) -> None:
    envs = events()
    pid = os.fork()
    if pid == 0:  # pragma: no cover -- the child crashes on purpose
        try:
            store = SqliteStorage(tmp_path, commit_every_s=3600)
            book = Book(store)
            outcomes(book, envs[:3])
            store.checkpoint("log-1", {0: 3}, set())
            store.commit()
            outcomes(book, envs[3:6])  # folded and checkpointed, not written yet when the process dies
            store.checkpoint("log-1", {0: 6}, set())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    again = SqliteStorage(tmp_path)
    assert again.positions() == {0: 3}
    assert len(Book(again).crises[CID].indicators) == 2
    again.reset("log-2")
    assert (again.log_id, again.positions(), Book(again).crises) == ("log-2", {}, {})
    again.close()


def test_one_state_directory_serves_one_process(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path)
    with pytest.raises(StoreBusy):
        SqliteStorage(tmp_path)
    store.close()
    SqliteStorage(tmp_path).close()


def test_a_restored_store_knows_who_answered_so_the_clock_owes_nothing_for_it(tmp_path: Path) -> None:
    """The deadlines read who answered; a store restored without it would take answers for misses."""
    from crisis.domain.deadlines import pending
    from crisis.domain.enums import Deadline

    envs = events()
    store = SqliteStorage(tmp_path)
    live = Book(store)
    outcomes(live, envs)
    store.checkpoint("log-1", {0: len(envs)}, set())
    answered = dict(live.crises[CID].answers)
    owed = {d: pending(live.crises[CID], "i1", "vidshare", d) for d in Deadline}
    store.close()
    again = SqliteStorage(tmp_path)
    restored = Book(again).crises[CID]
    assert set(restored.answers) == set(answered) == {("i1", "vidshare"), ("i2", "tubeco")}
    assert {d: pending(restored, "i1", "vidshare", d) for d in Deadline} == owed
    again.close()


def test_reads_see_the_same_state_whether_it_is_on_disk_being_written_or_pending(tmp_path: Path) -> None:
    """Writes wait in memory for the writer thread; a flush between any two events changes no verdict
    and no read (a sighting or retraction of an indicator already on disk included)."""
    envs = events()
    memory = Book()
    expected = outcomes(memory, envs)
    store = SqliteStorage(tmp_path, commit_every_s=3600)
    stored = Book(store)
    got = []
    for n, env in enumerate(envs):
        got += outcomes(stored, [env])
        store.checkpoint("log-1", {0: n + 1}, set())
        if n % 2:
            store.commit()
    assert got == expected
    record, want = stored.crises[CID], memory.crises[CID]
    assert build_report(record, at(300), HUB) == build_report(want, at(300), HUB)
    assert [r.data.indicator_id for r in record.indicators.values()] == list(want.indicators)
    assert [r.sightings for r in record.indicators.values()] == [
        r.sightings for r in want.indicators.values()
    ]
    assert list(record.timeline) == list(want.timeline) and len(record.actions) == len(want.actions)
    assert record.indicators.live("md5", "3" * 32) == ["i4"]
    store.close()
    again = Book(SqliteStorage(tmp_path))
    assert [r.retracted for r in again.crises[CID].indicators.values()] == [False, False, True, False]


@pytest.mark.parametrize("on_disk", [False, True])
def test_the_summary_and_streamed_lines_equal_the_whole_reports_parts(tmp_path: Path, on_disk: bool) -> None:
    """The summary (one pass, nothing kept per indicator) and the lines read from storage give exactly
    the parts of the whole report, for every reader."""
    from crisis.domain.enums import Role
    from crisis.domain.principal import Principal
    from crisis.domain.report import lines_of, report_lines, report_summary, summary_of

    store = SqliteStorage(tmp_path) if on_disk else None
    book = Book(store)
    red = shared("red", "9" * 32, 3, tlp=Tlp.RED, recipients=("vidshare",))
    red_action = action("vidshare", "red", "received", 4, tlp=Tlp.RED, recipients=("vidshare", "bka"))
    outcomes(book, [*events(), red, red_action])
    record = book.crises[CID]
    vid = Principal(org="vidshare", role=Role.PROVIDER, key_id="k")
    for reader in (None, HUB, vid):
        for now in (at(40), at(300)):
            whole = build_report(record, now, reader)
            summary, total = report_summary(record, now, reader)
            assert summary == summary_of(whole) and total == len(whole.indicators)
            assert list(lines_of(record, reader)) == list(report_lines(whole))
