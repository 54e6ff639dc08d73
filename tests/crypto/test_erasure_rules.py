"""Erasure and retention as rules, with plain values: who may erase, when retention ends, what the fold
keeps afterwards, and that a log replayed without its keys gets the same verdicts."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest

from crisis.bus.memory import MemoryBus
from crisis.clock.retention import Retention
from crisis.domain import commands, retention, sensitive
from crisis.domain.book import Book
from crisis.domain.commands import DomainError
from crisis.domain.crisis import TransitionRequest
from crisis.domain.enums import EventType, Role, Status
from crisis.domain.envelope import Envelope
from crisis.ledger import Ledger
from tests.domain.test_commands import BKA, HUB, VID, write
from tests.domain.test_report import CID, action, opened, shared


def closed_crisis(book: Book) -> Book:
    state = book.crises[CID].state
    for to in (Status.CONCLUDED, Status.CLOSED):
        req = TransitionRequest(to=to, expected_version=state.version, reason="debrief")
        env = commands.transition(book, write(HUB), CID, req)
        assert book.apply(env).accepted
        state = book.crises[CID].state
    return book


def folded(*envs: Envelope) -> Book:
    book = Book()
    for env in envs:
        assert book.apply(env).accepted, env
    return book


def test_only_a_coordinator_erases_and_the_fold_holds_a_forged_stamp_to_it() -> None:
    book = folded(opened(), shared("i1", "a" * 32, 1))
    for actor in (BKA, VID):
        with pytest.raises(DomainError) as refused:
            commands.erase(book, write(actor), CID, "i1", "mistake")
        assert refused.value.code == "forbidden"
    env = commands.erase(book, write(HUB), CID, "i1", "personal data")
    forged = env.model_copy(update={"id": "forged", "role": Role.PROVIDER})
    assert book.apply(forged).code == "forbidden"
    assert book.apply(env).accepted
    with pytest.raises(DomainError) as again:
        commands.erase(book, write(HUB), CID, "i1", "again")
    assert again.value.code == "conflict"


def test_an_erasure_drops_the_value_from_the_fold_and_keeps_kinds_times_and_outcomes() -> None:
    book = folded(
        opened(),
        shared("i1", "a" * 32, 1),
        shared("i2", "b" * 32, 2),
        action("vidshare", "i1", "removed", 3, note="n"),
    )
    assert book.apply(commands.erase(book, write(HUB), CID, "i1", "personal data")).accepted
    record = book.crises[CID]
    erased, kept = record.indicators["i1"], record.indicators["i2"]
    assert (erased.data.kind, erased.data.value, erased.data.erased) == ("md5", None, True)
    assert (kept.data.value, kept.data.erased) == ("b" * 32, False)
    [(_, data)] = list(record.actions)
    assert (data.outcome, data.note, data.erased) == ("removed", "", True)
    assert "a" * 32 not in "".join(e.model_dump_json() for e in record.timeline)
    # The erased value no longer finds the indicator: sharing it again is a new indicator.
    assert record.indicators.live("md5", "a" * 32) == []


def test_retention_ends_only_after_closure_and_only_by_the_clock() -> None:
    book = folded(opened(), shared("i1", "a" * 32, 1))
    assert retention.expires_at(book.crises[CID].state) is None
    closed_crisis(book)
    state = book.crises[CID].state
    due = retention.expires_at(state)
    assert due == state.updated_at + timedelta(seconds=state.retention_after_close_s)
    early = retention.expiry_event(state, due - timedelta(seconds=1)).model_copy(update={"id": "early"})
    assert book.apply(early).code == "not_due"
    by_key = retention.expiry_event(state, due).model_copy(update={"id": "k", "source": "/orgs/hub/keys/k1"})
    assert book.apply(by_key).code == "forbidden"
    on_time = retention.expiry_event(state, due)
    assert on_time.id == retention.expiry_id(CID) and book.apply(on_time).accepted
    after = book.crises[CID].state
    assert after.retention_expired_at == due and after.erased and retention.expires_at(after) is None
    assert book.crises[CID].indicators["i1"].data.erased


def test_a_log_replayed_without_its_keys_gets_the_same_verdicts() -> None:
    events = [opened(), shared("i1", "a" * 32, 1), action("vidshare", "i1", "removed", 2, note="n")]
    book = folded(*events)
    erasure = commands.erase(book, write(HUB), CID, "i1", "personal data")
    events.append(erasure)
    first = [book.apply(erasure)]
    # A reader folding the log later finds the indicator's key gone: every event under it opens erased.
    replayed = Book()
    covers = sensitive.erasure_covers(erasure)
    verdicts = []
    for env in events:
        kid = sensitive.key_id(env)
        verdicts.append(replayed.apply(sensitive.erased(env) if kid and covers(kid) else env))
    assert all(v.accepted for v in verdicts) and first[0].accepted
    assert replayed.crises[CID].indicators["i1"].data == book.crises[CID].indicators["i1"].data


async def test_the_retention_clock_writes_one_expiry_for_each_crisis_due_and_then_none() -> None:
    ledger = Ledger(MemoryBus(), poll=0.01)
    task = asyncio.create_task(ledger.run())
    try:
        assert all(o.accepted for o in await ledger.write([opened(), shared("i1", "a" * 32, 1)]))
        for to in (Status.CONCLUDED, Status.CLOSED):
            req = TransitionRequest(to=to, expected_version=ledger.book.crises[CID].state.version)
            [outcome] = await ledger.write([commands.transition(ledger.book, write(HUB), CID, req)])
            assert outcome.accepted
        due = retention.expires_at(ledger.book.crises[CID].state)
        assert due is not None
        clock = Retention(ledger, now=lambda: due - timedelta(seconds=1))
        assert clock.due_now() == []
        clock.now = lambda: due + timedelta(seconds=5)
        [env] = clock.due_now()
        assert (env.type, env.id) == (EventType.CRISIS_RETENTION_EXPIRED, retention.expiry_id(CID))
        await clock.tick()
        assert clock.expired == 1 and ledger.book.crises[CID].state.retention_expired_at == env.time
        assert clock.due_now() == []
        assert ledger.book.crises[CID].indicators["i1"].data.value is None
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
