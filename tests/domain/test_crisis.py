"""The status machine, as pure rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crisis.domain import crisis as rules
from crisis.domain.crisis import CrisisCreate, TransitionError, TransitionRequest
from crisis.domain.enums import EventType, Role, Status
from crisis.domain.principal import Principal

T0 = datetime(2026, 3, 15, 13, 40, tzinfo=UTC)
HUB = Principal(org="hub", role=Role.COORDINATOR, key_id="k")
AUTHORITY = Principal(org="bka", role=Role.AUTHORITY, key_id="k")


def monitoring() -> rules.CrisisState:
    state, _ = rules.opened("c", CrisisCreate(title="t"), HUB, T0)
    return state


def move(state: rules.CrisisState, to: Status, level: int | None = None) -> rules.CrisisState:
    req = TransitionRequest(to=to, level=level, expected_version=state.version)
    return rules.plan(state, req, HUB, T0)[0]


def test_the_whole_life_of_a_crisis() -> None:
    state = monitoring()
    state = move(state, Status.ACTIVATED, 1)
    state = move(state, Status.ACTIVATED, 3)
    state = move(state, Status.CONCLUDED)
    state = move(state, Status.CLOSED)
    assert (state.status, state.level, state.version) == (Status.CLOSED, 3, 5)


@pytest.mark.parametrize(
    ("path", "to", "level"),
    [
        ([], Status.CONCLUDED, None),  # monitoring cannot conclude
        ([(Status.CLOSED, None)], Status.ACTIVATED, 1),  # closed is terminal
        ([(Status.ACTIVATED, 2)], Status.ACTIVATED, 2),  # the same level is no change
        ([(Status.ACTIVATED, 2)], Status.CLOSED, None),  # activated concludes first
        ([], Status.ACTIVATED, None),  # activation needs a level
    ],
)
def test_forbidden_transitions(path: list[tuple[Status, int | None]], to: Status, level: int | None) -> None:
    state = monitoring()
    for step, lvl in path:
        state = move(state, step, lvl)
    with pytest.raises(TransitionError) as err:
        move(state, to, level)
    assert err.value.code == "invalid_transition"


def test_a_stale_version_is_refused() -> None:
    state = move(monitoring(), Status.ACTIVATED, 1)
    with pytest.raises(TransitionError) as err:
        rules.plan(state, TransitionRequest(to=Status.CONCLUDED, expected_version=1), HUB, T0)
    assert err.value.code == "stale_version"


def test_who_may_open_and_move() -> None:
    assert rules.may_open(AUTHORITY, Status.MONITORING) and not rules.may_open(AUTHORITY, Status.ACTIVATED)
    assert rules.may_open(HUB, Status.ACTIVATED)
    assert rules.may_transition(HUB) and not rules.may_transition(AUTHORITY)


def test_event_types() -> None:
    assert rules.event_type_for(None, Status.ACTIVATED) is EventType.CRISIS_ACTIVATED
    assert rules.event_type_for(Status.ACTIVATED, Status.ACTIVATED) is EventType.CRISIS_LEVEL_CHANGED
    assert rules.event_type_for(Status.CONCLUDED, Status.CLOSED) is EventType.CRISIS_CLOSED
