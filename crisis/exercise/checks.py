"""Rules across a scenario that no single field can check: order, status machine, who acts as whom."""

from __future__ import annotations

from collections.abc import Iterator

from crisis.domain.crisis import NEXT
from crisis.domain.enums import Role, Status
from crisis.exercise.scenario import Scenario, Step

Loc = tuple[int | str, ...]
Problem = tuple[Loc, str]

# Who may do what, as the API rules it (crisis.domain.crisis and the indicators route).
SHARERS = frozenset({Role.COORDINATOR, Role.AUTHORITY, Role.PROVIDER})
TRANSITION = {"activate": Status.ACTIVATED, "change_level": Status.ACTIVATED}
TRANSITION |= {"conclude": Status.CONCLUDED, "close": Status.CLOSED}


def check(s: Scenario) -> list[Problem]:
    """Every problem, each with the loc of the field to fix."""
    return [*_participants(s), *_timeline(s)]


def actor(s: Scenario, step: Step) -> str | None:
    """The organisation the runner acts as for a step: its `by`, else the first fitting participant."""
    inject = getattr(step, step.kind, None)
    by: str | None = getattr(inject, "by", None)
    if by is not None:
        return by
    roles: tuple[Role, ...] = (Role.COORDINATOR,)
    if step.kind == "share":
        roles = (Role.AUTHORITY, Role.COORDINATOR, Role.PROVIDER)
    elif step.kind == "note":
        return None
    for role in roles:
        found = next((p.org for p in s.participants if p.role is role), None)
        if found is not None:
            return found
    return None


def _participants(s: Scenario) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, p in enumerate(s.participants):
        if p.org in seen:
            yield (
                ("participants", i, "org"),
                f"{p.org} is already participant {seen[p.org]}; one role per org",
            )
        seen.setdefault(p.org, i)
        if p.simulate is not None and p.role is not Role.PROVIDER:
            yield ("participants", i, "simulate"), f"only providers are simulated, {p.org} is {p.role}"
        if p.key_name is not None and s.keys_file is None:
            yield ("participants", i, "key_name"), "key_name needs a keys_file at the top of the scenario"
    for i, p in enumerate(s.participants):
        if p.org in _actors(s) and not p.has_key_source and not s.generate_keys:
            yield (
                ("participants", i),
                (
                    f"the runner acts as {p.org} but has no key: give key, key_name or key_env, "
                    "or set generate_keys: true"
                ),
            )


def _actors(s: Scenario) -> set[str]:
    orgs = {p.org for p in s.simulated}
    orgs |= {org for step in s.timeline if (org := actor(s, step)) is not None}
    return orgs


def _timeline(s: Scenario) -> Iterator[Problem]:
    status: Status | None = None
    level: int | None = None
    previous = 0.0
    for i, step in enumerate(s.timeline):
        here: Loc = ("timeline", i)
        if step.at < previous:
            yield (*here, "at"), "steps must be in time order; this one is before the previous step"
        previous = max(previous, step.at)
        yield from _who(s, step, here)
        if step.kind == "note":
            continue
        if step.kind == "open":
            assert step.open is not None
            if status is not None:
                yield (*here, "open"), "the crisis is already open; a scenario runs one crisis"
                continue
            status, level = step.open.status, step.open.level
            continue
        if status is None:
            yield (*here, step.kind), "the first inject must open the crisis"
            continue
        problem = _move(status, level, step)
        if problem:
            yield (*here, step.kind), problem
            continue
        status = TRANSITION.get(step.kind, status)
        level = _level_after(step, level)
    if status is None:
        yield ("timeline",), "the timeline never opens the crisis"
    yield from _expectations(s)


def _move(status: Status, level: int | None, step: Step) -> str | None:
    if step.kind == "share":
        return "a closed crisis takes no indicators" if status is Status.CLOSED else None
    target = TRANSITION[step.kind]
    if step.kind == "activate" and status is not Status.MONITORING:
        return f"only a monitoring crisis is activated; it is {status} here (use change_level)"
    if step.kind == "change_level":
        if status is not Status.ACTIVATED:
            return f"the level changes only while activated; it is {status} here"
        if step.change_level is not None and step.change_level.level == level:
            return f"the crisis is already at level {level}"
    if target not in NEXT[status]:
        return f"a {status} crisis cannot be {'concluded' if step.kind == 'conclude' else step.kind + 'd'}"
    return None


def _level_after(step: Step, level: int | None) -> int | None:
    if step.activate is not None:
        return step.activate.level
    if step.change_level is not None:
        return step.change_level.level
    return level


def _who(s: Scenario, step: Step, here: Loc) -> Iterator[Problem]:
    if step.kind == "note":
        return
    org = actor(s, step)
    inject = getattr(step, step.kind)
    loc: Loc = (*here, step.kind, "by") if getattr(inject, "by", None) else (*here, step.kind)
    participant = s.participant(org) if org else None
    if participant is None:
        yield loc, (f"{org} is not a participant" if org else f"no participant may {step.kind}: add one")
        return
    role = participant.role
    if step.kind == "share" and role not in SHARERS:
        yield loc, f"{org} is {role}; indicators are shared by coordinators, authorities or providers"
    elif step.kind == "open" and step.open is not None:
        may = role is Role.COORDINATOR or (role is Role.AUTHORITY and step.open.status is Status.MONITORING)
        if not may:
            yield loc, f"{org} is {role}; only a coordinator declares, an authority may open monitoring"
    elif step.kind not in ("share", "open") and role is not Role.COORDINATOR:
        yield loc, f"{org} is {role}; only a coordinator may {step.kind.replace('_', ' ')}"


def _expectations(s: Scenario) -> Iterator[Problem]:
    spots: list[tuple[Loc, object]] = [(("expect",), s.expect)]
    spots += [
        (("timeline", i, "share", "expect"), st.share.expect) for i, st in enumerate(s.timeline) if st.share
    ]
    providers = {p.org for p in s.participants if p.role is Role.PROVIDER}
    for loc, expect in spots:
        orgs = getattr(expect, "providers", "all")
        if orgs == "all":
            continue
        for j, org in enumerate(orgs):
            if org not in providers:
                yield (*loc, "providers", j), f"{org} is not a provider participant"
