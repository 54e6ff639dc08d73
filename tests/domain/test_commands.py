"""Commands as pure functions: state, actor and request in; events or one refusal out."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from crisis.domain import commands
from crisis.domain.book import Book
from crisis.domain.commands import DomainError, Write
from crisis.domain.crisis import CrisisCreate
from crisis.domain.enums import EventType, Role, Tlp
from crisis.domain.principal import Principal
from tests.domain.test_report import T0

HUB = Principal(org="hub", role=Role.COORDINATOR, key_id="k1")
BKA = Principal(org="bka", role=Role.AUTHORITY, key_id="k2")
VID = Principal(org="vidshare", role=Role.PROVIDER, key_id="k3")
ITEM = {"kind": "md5", "value": "1" * 32, "canonical": "1" * 32}
counter = itertools.count()


def write(actor: Principal, known: frozenset[str] | None = None) -> Write:
    registered = (lambda org: org in known) if known is not None else commands._everyone
    return Write(actor=actor, at=T0, ids=lambda *parts: f"e{next(counter)}", registered=registered)


def folded(book: Book, *envelopes: Any) -> None:
    for env in envelopes:
        outcome = book.apply(env)
        assert outcome.accepted, outcome


def crisis(book: Book, **body: Any) -> str:
    req = CrisisCreate.model_validate({"title": "Attack", "status": "monitoring", **body})
    env = commands.open_crisis(book, write(HUB), req)
    folded(book, env)
    return env.subject


def test_a_red_crisis_names_its_declarer_on_its_events_and_needs_registered_recipients() -> None:
    book = Book()
    with pytest.raises(DomainError) as refused:
        commands.open_crisis(book, write(HUB), CrisisCreate(title="A", tlp=Tlp.RED))
    assert refused.value.code == "recipients_required"
    req = CrisisCreate(title="A", tlp=Tlp.RED, tlprecipients=["bka", "vidshrae"])
    with pytest.raises(DomainError) as refused:
        commands.open_crisis(book, write(HUB, frozenset({"hub", "bka", "vidshare"})), req)
    assert refused.value.code == "unknown_org"
    assert refused.value.extra["errors"] == [
        {"field": "tlprecipients.1", "message": "vidshrae is not registered"}
    ]
    env = commands.open_crisis(book, write(HUB), CrisisCreate(title="A", tlp=Tlp.RED, tlprecipients=["bka"]))
    assert set(env.tlprecipients) == {"bka", "hub"} and env.role is Role.COORDINATOR


def test_a_share_merges_only_within_the_same_audience() -> None:
    book = Book()
    cid = crisis(book)
    [red] = commands.share(book, write(BKA), cid, [(0, dict(ITEM))], Tlp.RED, ["vidshare"])
    folded(book, red)
    assert set(red.tlprecipients) == {"vidshare", "hub"}  # the declarer is always named
    # Outside the RED audience: its own indicator, nothing that names the RED one.
    [amber] = commands.share(
        book,
        write(Principal(org="tubeco", role=Role.PROVIDER, key_id="t")),
        cid,
        [(0, dict(ITEM))],
        None,
        None,
    )
    assert amber.type is EventType.INDICATOR_SHARED and red.id not in amber.model_dump_json()
    folded(book, amber)
    # The same readers (vidshare shares to bka, the author counted in): a sighting of the RED one.
    [again] = commands.share(book, write(VID), cid, [(0, dict(ITEM))], Tlp.RED, ["bka"])
    assert again.type is EventType.INDICATOR_SIGHTED and again.data["indicator_id"] == red.id
    # Within one batch, the second of two equal items is a sighting of the first.
    other = {"kind": "md5", "value": "2" * 32, "canonical": "2" * 32}
    first, second = commands.share(book, write(HUB), cid, [(0, dict(other)), (1, dict(other))], None, None)
    assert first.type is EventType.INDICATOR_SHARED
    assert second.type is EventType.INDICATOR_SIGHTED and second.data["indicator_id"] == first.id
    with pytest.raises(DomainError) as refused:
        commands.share(book, write(HUB), cid, [(0, dict(other))], Tlp.CLEAR, None)
    assert refused.value.code == "tlp_wider_than_crisis"


def test_recipients_lie_within_a_named_crisis_audience() -> None:
    book = Book()
    cid = crisis(book, tlp="red", tlprecipients=["bka", "vidshare"])
    with pytest.raises(DomainError) as refused:
        commands.share(book, write(VID), cid, [(0, dict(ITEM))], None, ["tubeco"])
    assert refused.value.code == "recipients_outside_crisis"
    [env] = commands.share(book, write(VID), cid, [(0, dict(ITEM))], None, None)
    assert set(env.tlprecipients) == {"bka", "vidshare", "hub"}


def test_an_unreadable_indicator_is_refused_as_if_missing() -> None:
    book = Book()
    cid = crisis(book)
    [red] = commands.share(book, write(BKA), cid, [(0, dict(ITEM))], Tlp.RED, ["vidshare"])
    folded(book, red)
    outsider = Principal(org="tubeco", role=Role.PROVIDER, key_id="t")
    errors = []
    for indicator_id in (red.id, "missing"):
        with pytest.raises(DomainError) as refused:
            commands.report_action(book, write(outsider), cid, indicator_id, "received", "")  # type: ignore[arg-type]
        errors.append((refused.value.code, refused.value.message.replace(indicator_id, "ID")))
    assert errors[0] == errors[1] == ("not_found", f"no indicator ID in crisis {cid}")
