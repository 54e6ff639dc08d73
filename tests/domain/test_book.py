"""The fold: the same log gives every reader the same verdicts."""

from __future__ import annotations

from crisis.domain.book import Book
from crisis.domain.enums import EventType, Mode, Role, Tlp
from crisis.domain.envelope import Envelope, source_for
from tests.domain.test_report import CID, action, at, fold, opened, shared, sighted


def test_a_sighting_names_its_indicator_and_a_repeated_event_id_is_a_duplicate() -> None:
    book = fold(opened(), shared("i1", "1" * 32, 0))
    again = sighted("i1", "1" * 32, 5, org="hub")
    first = book.apply(again)
    assert first.accepted and first.sighting_of == "i1"
    retry = book.apply(again)
    assert retry.duplicate and retry.sighting_of == "i1" and not retry.deliverable
    assert len(book.crises[CID].indicators["i1"].sightings) == 1


def test_two_shares_of_one_value_racing_stand_as_two_indicators() -> None:
    # Two API processes may each write `indicator.shared` before folding the other's: both ids stay
    # valid (each writer answered "created" and each subscriber received its id).
    book = fold(opened(), shared("i1", "1" * 32, 0), shared("i2", "1" * 32, 0, org="hub"))
    assert set(book.crises[CID].indicators) == {"i1", "i2"}
    assert book.apply(action("vidshare", "i2", "received", 1)).accepted


def test_unknown_crisis_unknown_indicator_and_malformed_data_are_rejected() -> None:
    book = Book()
    assert book.apply(shared("i1", "1" * 32, 0)).code == "unknown_crisis"
    book = fold(opened())
    assert book.apply(action("vidshare", "nope", "removed", 1)).code == "unknown_indicator"
    bad = Envelope(
        source=source_for("bka", "k"),
        type=EventType.INDICATOR_SHARED,
        subject=CID,
        tlp=Tlp.AMBER,
        mode=Mode.LIVE,
        data={"kind": "md5"},
    )
    assert book.apply(bad).code == "malformed"


def test_exercise_events_never_touch_a_live_crisis() -> None:
    book = fold(opened())
    wrong = shared("i1", "1" * 32, 0).model_copy(update={"mode": Mode.EXERCISE, "id": "x"})
    assert book.apply(wrong).code == "mode_mismatch"


def test_a_concluded_crisis_records_actions_and_a_closed_one_takes_none() -> None:
    from crisis.domain import crisis as rules
    from crisis.domain.crisis import TransitionRequest
    from crisis.domain.enums import Status
    from crisis.domain.events import CrisisChanged
    from tests.domain.test_report import HUB

    book = fold(opened(), shared("i1", "1" * 32, 0))
    state = book.crises[CID].state
    for to in (Status.CONCLUDED, Status.CLOSED):
        req = TransitionRequest(to=to, expected_version=state.version)
        state, change = rules.plan(state, req, HUB, at(10))
        data = CrisisChanged(crisis=state, transition=change, expected_version=req.expected_version)
        env = Envelope(
            source=source_for("hub", "k"),
            type=rules.event_type_for(change.from_status, to),
            subject=CID,
            tlp=Tlp.AMBER,
            mode=Mode.LIVE,
            data=data.model_dump(mode="json"),
        )
        assert book.apply(env).accepted
        if to is Status.CONCLUDED:  # stood down: a late removal is still recorded
            assert book.apply(action("vidshare", "i1", "removed", 11)).accepted
    assert len(book.crises[CID].actions) == 1
    assert book.apply(shared("i2", "2" * 32, 20)).code == "crisis_closed"
    assert book.apply(action("vidshare", "i1", "blocked", 21)).code == "crisis_closed"


def test_every_share_is_judged_on_its_own_handling_after_others_of_the_batch_passed() -> None:
    # A batch's shares carry one writer and label, so the fold checks those once; any share that differs
    # from the last one that passed is checked again in full.
    book = fold(opened(), shared("i1", "1" * 32, 0), shared("i2", "2" * 32, 0))
    assert book.apply(shared("i3", "3" * 32, 0, tlp=Tlp.GREEN)).code == "tlp_wider_than_crisis"
    red = shared("i4", "4" * 32, 0, tlp=Tlp.RED)
    assert book.apply(red).code == "recipients_required"
    observer = shared("i5", "5" * 32, 0).model_copy(update={"role": Role.OBSERVER})
    assert book.apply(observer).code == "forbidden"
    assert book.apply(shared("i6", "6" * 32, 1)).accepted
    assert set(book.crises[CID].indicators) == {"i1", "i2", "i6"}
