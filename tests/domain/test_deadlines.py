"""Deadlines as pure rules: what is due when, what the fold accepts as overdue, and what withdraws it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from crisis.domain import crisis as rules
from crisis.domain import deadlines
from crisis.domain.book import Book
from crisis.domain.crisis import ClockRequest, CrisisCreate
from crisis.domain.deadlines import Due
from crisis.domain.enums import Deadline, EventType, Mode, Role, Tlp
from crisis.domain.envelope import Envelope, source_for
from crisis.domain.events import ClockChanged, CrisisChanged
from crisis.domain.principal import Principal

T0 = datetime(2026, 3, 15, 13, 40, tzinfo=UTC)
HUB = Principal(org="hub", role=Role.COORDINATOR, key_id="k1")
CID = "c-1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _env(type: EventType, org: str, when: datetime, data: dict[str, Any], **kw: Any) -> Envelope:
    return Envelope(
        source=source_for(org, "k"),
        type=type,
        time=when,
        subject=CID,
        tlp=kw.pop("tlp", Tlp.AMBER),
        mode=Mode.LIVE,
        data=data,
        **kw,
    )


def book(roster: list[str], receipt_s: int = 60, action_s: int = 600, **create: Any) -> Book:
    req = CrisisCreate(
        title="Attack",
        status="activated",  # type: ignore[arg-type]
        level=1,
        criteria=["viral_spread"],  # type: ignore[list-item]
        receipt_deadline_s=receipt_s,
        action_deadline_s=action_s,
        **create,
    )
    state, transition = rules.opened(CID, req, HUB, T0, tuple(roster))
    data = CrisisChanged(crisis=state, transition=transition, expected_version=0)
    b = Book()
    opened = _env(
        EventType.CRISIS_ACTIVATED,
        "hub",
        T0,
        data.model_dump(mode="json"),
        tlp=state.tlp,
        tlprecipients=state.tlprecipients,
        role=Role.COORDINATOR,
    )
    assert b.apply(opened).accepted
    return b


def share(b: Book, ind: str, seconds: float = 0) -> None:
    data = {"kind": "md5", "value": ind * 32, "canonical": ind * 32, "indicator_id": ind, "shared_by": "bka"}
    assert b.apply(_env(EventType.INDICATOR_SHARED, "bka", at(seconds), data)).accepted


def answer(b: Book, org: str, ind: str, outcome: str, seconds: float) -> None:
    data = {"indicator_id": ind, "outcome": outcome, "provider_org": org, "at": at(seconds).isoformat()}
    assert b.apply(_env(EventType.ACTION_REPORTED, org, at(seconds), data)).accepted


def test_what_is_due_when() -> None:
    b = book(["tubeco", "vidshare"])
    share(b, "a")
    record = b.crises[CID]
    assert deadlines.to_publish(record, "a", Deadline.RECEIPT, at(30)) == ([], at(60))
    answer(b, "tubeco", "a", "received", 50)
    dues, ahead = deadlines.to_publish(record, "a", Deadline.RECEIPT, at(61))
    assert dues == [Due(CID, "a", "vidshare", Deadline.RECEIPT, at(60))] and ahead is None
    # tubeco's receipt does not meet its action deadline; both still owe one.
    dues, ahead = deadlines.to_publish(record, "a", Deadline.ACTION, at(61))
    assert dues == [] and ahead == at(600)


def test_an_overdue_event_stands_once_and_only_when_due() -> None:
    b = book(["vidshare"])
    share(b, "a")
    record = b.crises[CID]
    due = Due(CID, "a", "vidshare", Deadline.RECEIPT, at(60))
    early = book(["vidshare"])
    share(early, "a")
    assert early.apply(deadlines.overdue_event(early.crises[CID], due, at(59))).code == "not_overdue"
    # Another process noticing the same miss writes the same id; the first verdict stands.
    first = deadlines.overdue_event(record, due, at(61))
    second = deadlines.overdue_event(record, due, at(62))
    assert first.id == second.id
    late = Envelope.model_validate({**first.model_dump(), "id": "other-id"})
    assert b.apply(first).accepted
    assert b.apply(second).duplicate
    assert b.apply(late).code == "not_overdue"
    assert deadlines.to_publish(record, "a", Deadline.RECEIPT, at(70)) == ([], None)
    forged = Envelope.model_validate({**first.model_dump(), "id": "x", "source": source_for("vidshare", "k")})
    assert b.apply(forged).code == "forbidden"


def test_a_late_answer_withdraws_the_overdue_deadline_it_meets() -> None:
    b = book(["vidshare"], receipt_s=60, action_s=60)
    share(b, "a")
    record = b.crises[CID]
    for deadline in Deadline:
        assert b.apply(
            deadlines.overdue_event(record, Due(CID, "a", "vidshare", deadline, at(60)), at(61))
        ).accepted
    assert deadlines.open_overdue(record) == {Deadline.RECEIPT: 1, Deadline.ACTION: 1}
    answer(b, "vidshare", "a", "received", 90)
    assert deadlines.open_overdue(record) == {Deadline.RECEIPT: 0, Deadline.ACTION: 1}
    answer(b, "vidshare", "a", "removed", 95)
    assert deadlines.open_overdue(record) == {Deadline.RECEIPT: 0, Deadline.ACTION: 0}
    assert record.overdue[("a", "vidshare", Deadline.ACTION)].withdrawn_at == at(95)


def test_nothing_is_owed_off_the_roster_on_a_retracted_indicator_or_outside_its_audience() -> None:
    b = book(["vidshare", "tubeco"], tlp=Tlp.RED, tlprecipients=["vidshare", "tubeco", "bka"])
    data = {"kind": "md5", "value": "b" * 32, "canonical": "b" * 32, "indicator_id": "b", "shared_by": "bka"}
    only = _env(EventType.INDICATOR_SHARED, "bka", T0, data, tlp=Tlp.RED, tlprecipients=("vidshare", "hub"))
    assert b.apply(only).accepted
    record = b.crises[CID]
    dues, _ = deadlines.to_publish(record, "b", Deadline.RECEIPT, at(61))
    assert [d.provider_org for d in dues] == ["vidshare"]  # tubeco may not read it
    retract = _env(
        EventType.INDICATOR_RETRACTED,
        "bka",
        at(5),
        {"indicator_id": "b", "retracted_by": "bka"},
        tlp=Tlp.RED,
        tlprecipients=record.indicators["b"].follow_up_recipients,
    )
    assert b.apply(retract).accepted
    assert deadlines.to_publish(record, "b", Deadline.RECEIPT, at(61)) == ([], None)


def _clock_change(b: Book, req: ClockRequest, who: Principal, when: datetime) -> Envelope:
    state = b.crises[CID].state
    change = rules.clock_planned(state, req, who, when, tuple(req.roster or state.roster))
    after = state.model_copy(update={"roster": change.roster, "version": state.version + 1})
    data = ClockChanged(crisis=after, change=change, expected_version=req.expected_version)
    return _env(
        EventType.CRISIS_CLOCK_CHANGED,
        who.org,
        when,
        data.model_dump(mode="json"),
        role=who.role,
        tlp=state.tlp,
        tlprecipients=state.tlprecipients,
    )


def test_clock_changes_are_folded_by_the_rules_and_move_the_deadlines() -> None:
    b = book(["vidshare"], receipt_s=60)
    share(b, "a")
    record = b.crises[CID]
    provider = Principal(org="vidshare", role=Role.PROVIDER, key_id="p")
    longer = ClockRequest(expected_version=1, receipt_deadline_s=120)
    assert b.apply(_clock_change(b, longer, provider, at(10))).code == "forbidden"
    assert b.apply(_clock_change(b, longer, HUB, at(10))).accepted
    assert (record.state.version, record.state.receipt_deadline_s) == (2, 120)
    assert b.apply(_clock_change(b, longer, HUB, at(11))).code == "stale_version"
    # The deadline moved: nothing is due at 61 s any more, and the clock is told when to look again.
    assert deadlines.to_publish(record, "a", Deadline.RECEIPT, at(61)) == ([], at(120))


def test_a_roster_outside_a_red_crisis_audience_is_refused_by_the_fold() -> None:
    b = book(["vidshare"], tlp=Tlp.RED, tlprecipients=["vidshare"])
    env = _clock_change(b, ClockRequest(expected_version=1, roster=["tubeco"]), HUB, at(1))
    assert b.apply(env).code == "recipients_outside_crisis"


def test_the_default_roster_is_the_providers_in_the_audience() -> None:
    providers = ["vidshare", "tubeco", "hub"]
    assert deadlines.default_roster(Tlp.AMBER, [], "hub", providers) == ("hub", "tubeco", "vidshare")
    assert deadlines.default_roster(Tlp.RED, ["tubeco"], "hub", providers) == ("hub", "tubeco")
