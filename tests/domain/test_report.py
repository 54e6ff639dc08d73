"""The report is a pure function of the folded log: known delays give exact figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from crisis.domain import crisis as rules
from crisis.domain.book import Book
from crisis.domain.crisis import CrisisCreate
from crisis.domain.enums import EventType, Mode, Role, Tlp
from crisis.domain.envelope import Envelope, source_for
from crisis.domain.events import CrisisChanged
from crisis.domain.principal import Principal
from crisis.domain.report import Report, build_report, cell_text, matrix, render_markdown

T0 = datetime(2026, 3, 15, 13, 40, tzinfo=UTC)
HUB = Principal(org="hub", role=Role.COORDINATOR, key_id="k1")
CID = "c-1"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def opened(tlp: Tlp = Tlp.AMBER) -> Envelope:
    req = CrisisCreate(title="Attack", status="activated", level=2, criteria=["viral_spread"], tlp=tlp)  # type: ignore[arg-type]
    state, transition = rules.opened(CID, req, HUB, T0)
    data = CrisisChanged(crisis=state, transition=transition, expected_version=0)
    return Envelope(
        id="e-open",
        source=source_for("hub", "k1"),
        type=EventType.CRISIS_ACTIVATED,
        time=T0,
        subject=CID,
        tlp=tlp,
        mode=Mode.LIVE,
        data=data.model_dump(mode="json"),
    )


def shared(ind_id: str, value: str, minutes: float, org: str = "bka", **handling: Any) -> Envelope:
    data = {"kind": "md5", "value": value, "canonical": value, "indicator_id": ind_id, "shared_by": org}
    return Envelope(
        id=f"e-{ind_id}-{minutes}",
        source=source_for(org, "k2"),
        type=EventType.INDICATOR_SHARED,
        time=at(minutes),
        subject=CID,
        tlp=handling.get("tlp", Tlp.AMBER),
        mode=Mode.LIVE,
        tlprecipients=handling.get("recipients", ()),
        data=data,
    )


def sighted(of: str, value: str, minutes: float, org: str = "hub", **handling: Any) -> Envelope:
    """`indicator.sighted`: `value` seen again by `org`, naming the indicator `of` it repeats."""
    data = {"kind": "md5", "value": value, "canonical": value, "indicator_id": of, "sighted_by": org}
    return shared(of, value, minutes, org, **handling).model_copy(
        update={"id": f"e-{of}-{org}-{minutes}", "type": EventType.INDICATOR_SIGHTED, "data": data}
    )


def action(org: str, ind_id: str, outcome: str, minutes: float, note: str = "", **handling: Any) -> Envelope:
    data = {"indicator_id": ind_id, "outcome": outcome, "provider_org": org, "at": at(minutes).isoformat()}
    if note:
        data["note"] = note
    return Envelope(
        id=f"e-{org}-{ind_id}-{outcome}",
        source=source_for(org, "k3"),
        type=EventType.ACTION_REPORTED,
        time=at(minutes),
        subject=CID,
        tlp=handling.get("tlp", Tlp.AMBER),
        mode=Mode.LIVE,
        tlprecipients=handling.get("recipients", ()),
        data=data,
    )


def fold(*envs: Envelope) -> Book:
    book = Book()
    for env in envs:
        assert book.apply(env).accepted, env
    return book


def scenario() -> Book:
    return fold(
        opened(),
        shared("i1", "1" * 32, 0),
        shared("i2", "2" * 32, 10),
        sighted("i1", "1" * 32, 12, org="hub"),
        action("vidshare", "i1", "received", 5),
        action("vidshare", "i1", "removed", 50),
        action("vidshare", "i2", "received", 80),  # receipt 70 minutes after share: late
        action("tubeco", "i1", "blocked", 30),  # no separate receipt: the action is the receipt
        action("tubeco", "i2", "received", 11),
        action("tubeco", "i2", "not_found", 130),
    )


def test_provider_figures_on_known_delays() -> None:
    report = build_report(scenario().crises[CID], at(200))
    assert [p.org for p in report.providers] == ["tubeco", "vidshare"]
    tube, vid = report.providers
    assert vid.model_dump(exclude={"items"}) == {
        "org": "vidshare",
        "indicators": 2,
        "received": 2,
        "actioned": 1,
        "receipt_within_hour": 1,
        "action_within_hour": 1,
        "median_receipt_s": (300 + 4200) / 2,
        "median_action_s": 3000.0,
        "slowest_receipt_s": 4200.0,
        "slowest_action_s": 3000.0,
        # Not on the roster (the crisis has none), but its deadlines still count: i2's receipt came
        # late and its outcome never came.
        "expected": False,
        "receipts_due": 2,
        "receipts_missed": 1,
        "actions_due": 2,
        "actions_missed": 1,
    }
    i1, i2 = vid.items
    assert (i1.receipt_s, i1.first_action, i1.action_s) == (300.0, "removed", 3000.0)
    assert (i2.receipt_s, i2.first_action, i2.action_s, i2.first_action_at) == (4200.0, None, None, None)
    assert tube.received == 2 and tube.actioned == 2
    assert [i.receipt_s for i in tube.items] == [1800.0, 60.0]
    assert [i.action_s for i in tube.items] == [1800.0, 7200.0]
    assert tube.action_within_hour == 1 and tube.slowest_action_s == 7200.0
    assert tube.median_action_s == (1800 + 7200) / 2


def test_indicators_and_timeline() -> None:
    report = build_report(scenario().crises[CID], at(200))
    assert report.one_hour_s == 3600
    i1 = report.indicators[0]
    assert (i1.indicator_id, i1.shared_by, i1.shared_at) == ("i1", "bka", T0)
    assert [(s.org, s.at) for s in i1.sightings] == [("hub", at(12))]
    assert len(report.timeline) == 10
    assert report.timeline[0].summary.startswith("new -> activated (level 2)")
    assert (report.timeline[0].status, report.timeline[0].level) == ("activated", 2)
    assert report.timeline[3].status is None  # only crisis events carry a status
    assert "sighting of i1" in report.timeline[3].summary
    assert report.timeline[5].org == "vidshare"


def test_unanswered_indicators_count_for_every_reporting_provider() -> None:
    book = scenario()
    book.apply(shared("i3", "3" * 32, 20))
    report = build_report(book.crises[CID], at(200))
    assert all(p.indicators == 3 and p.items[2].received_at is None for p in report.providers)


def test_tlp_decides_what_a_reader_sees() -> None:
    book = fold(
        opened(),
        shared("open", "1" * 32, 0),
        shared("red", "2" * 32, 1, tlp=Tlp.RED, recipients=("vidshare",)),
        action("vidshare", "red", "received", 2, tlp=Tlp.RED, recipients=("vidshare", "bka")),
    )
    record = book.crises[CID]
    full = build_report(record, at(5))
    assert {i.indicator_id for i in full.indicators} == {"open", "red"}
    for_hub = build_report(record, at(5), HUB)
    assert {i.indicator_id for i in for_hub.indicators} == {"open"}
    assert for_hub.providers == []
    assert len(for_hub.timeline) == 2
    vid = Principal(org="vidshare", role=Role.PROVIDER, key_id="k")
    for_vid = build_report(record, at(5), vid)
    assert {i.indicator_id for i in for_vid.indicators} == {"open", "red"}
    assert for_vid.providers[0].indicators == 2


def test_retracted_indicators_leave_the_due_list_unless_answered() -> None:
    book = scenario()
    book.apply(shared("i3", "3" * 32, 20))
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
    assert book.apply(retract).accepted
    report = build_report(book.crises[CID], at(200))
    assert [p.indicators for p in report.providers] == [2, 2]
    assert report.indicators[-1].retracted


def test_report_json_round_trip_and_markdown() -> None:
    report = build_report(scenario().crises[CID], at(200))
    again = Report.model_validate_json(report.model_dump_json())
    assert again == report
    text = render_markdown(report)
    assert text.startswith("# Crisis report: Attack")
    assert "| vidshare | no | 2 | 2 | 1 of 2 | 1 | 1 of 2 | 37m30s | 50m00s | 70m00s | 50m00s |" in text
    assert text.count("\n| 2026-") == 10


def test_the_matrix_and_the_notes_show_each_providers_answers() -> None:
    book = scenario()
    for env in (
        shared("i3", "3" * 32, 20),
        shared("i4", "4" * 32, 22, tlp=Tlp.RED, recipients=("vidshare",)),  # not tubeco's to act on
        action("vidshare", "i3", "disagree", 40, note="<b>satire</b> | kept"),
    ):
        assert book.apply(env).accepted, env
    report = build_report(book.crises[CID], at(200))
    rows = matrix(report.providers, report.indicators)
    texts = [(i, [cell_text(c, lambda s: f"{s:.0f}s") for c in cells]) for i, cells in rows]
    assert texts == [
        ("i1", ["blocked 1800s", "removed 3000s"]),
        ("i2", ["not_found 7200s", "received 4200s"]),
        ("i3", ["no answer", "disagree 1200s"]),
        ("i4", ["", "no answer"]),
    ]
    text = render_markdown(report)
    assert "| indicator | tubeco | vidshare |" in text
    assert "| `i3` | no answer | disagree 20m00s |" in text and "| `i4` |  | no answer |" in text
    # The note is the provider's text: shown, but never as HTML or as a table's column break.
    assert "| vidshare: disagree for i3 | &lt;b&gt;satire&lt;/b&gt; \\| kept |" in text


def test_handling_helpers() -> None:
    from crisis.domain.audience import follow_up_recipients, is_wider

    assert is_wider(Tlp.GREEN, Tlp.AMBER) and not is_wider(Tlp.RED, Tlp.AMBER_STRICT)
    assert not is_wider(Tlp.AMBER, Tlp.AMBER)
    assert follow_up_recipients(Tlp.RED, ("vidshare", "bka"), "bka") == ("vidshare", "bka")
    assert follow_up_recipients(Tlp.AMBER_STRICT, ("vidshare",), "bka") == ("vidshare", "bka")
    assert follow_up_recipients(Tlp.AMBER, ("vidshare",), "bka") == ()
