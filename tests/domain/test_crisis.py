"""The status machine, as pure rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from crisis.domain import crisis as rules
from crisis.domain.crisis import CrisisCreate, Transition, TransitionError, TransitionRequest
from crisis.domain.enums import ActivationCriterion, EventType, Role, Status
from crisis.domain.principal import Principal

T0 = datetime(2026, 3, 15, 13, 40, tzinfo=UTC)
HUB = Principal(org="hub", role=Role.COORDINATOR, key_id="k")
AUTHORITY = Principal(org="bka", role=Role.AUTHORITY, key_id="k")


def monitoring() -> rules.CrisisState:
    state, _ = rules.opened("c", CrisisCreate(title="t"), HUB, T0)
    return state


def move(
    state: rules.CrisisState,
    to: Status,
    level: int | None = None,
    criteria: tuple[ActivationCriterion, ...] = (ActivationCriterion.ONGOING_VIOLENT_EVENT,),
) -> rules.CrisisState:
    req = TransitionRequest(to=to, level=level, criteria=list(criteria), expected_version=state.version)
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


@pytest.mark.parametrize(
    ("path", "to", "allowed"),
    [
        ([], Status.CONCLUDED, "it may become activated or closed"),
        ([(Status.ACTIVATED, 2)], Status.CLOSED, "it may become activated at another level or concluded"),
        ([(Status.ACTIVATED, 2), (Status.CONCLUDED, None)], Status.ACTIVATED, "it may become closed"),
        ([(Status.CLOSED, None)], Status.ACTIVATED, "closed is final"),
    ],
)
def test_a_refused_transition_names_the_allowed_ones(
    path: list[tuple[Status, int | None]], to: Status, allowed: str
) -> None:
    state = monitoring()
    for step, lvl in path:
        state = move(state, step, lvl)
    with pytest.raises(TransitionError) as err:
        move(state, to, 1 if to is Status.ACTIVATED else None)
    article = "an" if state.status is Status.ACTIVATED else "a"
    assert err.value.message == f"{article} {state.status} crisis cannot become {to}; {allowed}"


def test_activation_needs_a_criterion() -> None:
    with pytest.raises(TransitionError, match="at least one criterion") as err:
        move(monitoring(), Status.ACTIVATED, 1, criteria=())
    assert err.value.code == "invalid_transition"
    with pytest.raises(ValidationError, match="at least one criterion"):
        CrisisCreate(title="t", status=Status.ACTIVATED, level=1)
    declared = CrisisCreate(title="t", status=Status.ACTIVATED, level=1, criteria=["viral_spread"])
    assert rules.opened("c", declared, HUB, T0)[0].criteria == (ActivationCriterion.VIRAL_SPREAD,)


def test_a_level_change_keeps_the_criteria_of_the_activation() -> None:
    state = move(monitoring(), Status.ACTIVATED, 1, criteria=(ActivationCriterion.DEPICTS_VIOLENCE,))
    state = move(state, Status.ACTIVATED, 2, criteria=())
    assert (state.level, state.criteria) == (2, (ActivationCriterion.DEPICTS_VIOLENCE,))


def test_an_activation_already_in_the_log_without_criteria_still_folds() -> None:
    # The fold applies advance(): the rule on criteria binds new requests, not what the log already holds.
    state = monitoring()
    logged = Transition(
        from_status=Status.MONITORING, to_status=Status.ACTIVATED, level=1, by_org="hub", by_key="k", at=T0
    )
    assert rules.advance(state, logged, expected_version=1).status is Status.ACTIVATED


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
