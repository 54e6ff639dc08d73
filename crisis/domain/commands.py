"""Commands: the current state, the actor and a request in; the events to publish, or one DomainError, out.

Pure functions with no I/O. A route validates its input, calls one command, commits the events and turns
the verdict into its public model; the CLI and the exercise runner go through the same routes. Every rule
that the log alone can check is also checked by the fold (crisis.domain.book), so an event that did not
come from here (a second process racing, a record written by hand) meets the same rules; the commands
add what needs more than the log (the organisation registry) and give the clearer, earlier error.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crisis.domain import audience, deadlines, retention
from crisis.domain import crisis as rules
from crisis.domain.book import SHARERS, Book, CrisisRecord, IndicatorRecord, takes_follow_ups
from crisis.domain.crisis import (
    DEFAULT_RETENTION_S,
    ClockRequest,
    CrisisCreate,
    CrisisState,
    TransitionError,
    TransitionRequest,
)
from crisis.domain.enums import ActionOutcome, EventType, Mode, Role, Tlp
from crisis.domain.envelope import MAX_ID, Envelope, replaced, source_for
from crisis.domain.events import ActionReported, ClockChanged, CrisisChanged
from crisis.domain.principal import Principal


class DomainError(Exception):
    """A request the rules refuse; `code` maps to an HTTP status at the edge, `extra` joins the answer."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def _everyone(_org: str) -> bool:
    return True


def _no_providers(_mode: Mode) -> Collection[str]:
    return ()


@dataclass(frozen=True)
class Write:
    """Who writes, when, how its event ids are made and which organisations exist.

    `ids(*parts)` gives the id of the event made for `parts`: the same id on every retry with the same
    Idempotency-Key. `idempotency` is the `<scope>.<digest>` stamp of such a request. `registered` says
    whether an organisation is in the registry (everyone, when no registry is configured); `providers`
    lists the provider organisations a crisis's roster starts with (within its audience);
    `retention_s` is how long after closure a crisis's values stay readable unless its declaration says.
    """

    actor: Principal
    at: datetime
    ids: Callable[..., str]
    idempotency: str | None = None
    registered: Callable[[str], bool] = _everyone
    providers: Callable[[Mode], Collection[str]] = _no_providers
    retention_s: int = DEFAULT_RETENTION_S

    def envelope(
        self, type: EventType, event_id: str, crisis: CrisisState, handling: Handling, data: dict[str, Any]
    ) -> Envelope:
        return Envelope(
            id=event_id,
            source=source_for(self.actor.org, self.actor.key_id),
            type=type,
            time=self.at,
            subject=crisis.id,
            tlp=handling[0],
            mode=crisis.mode,
            tlprecipients=handling[1],
            role=self.actor.role,
            idempotency=self.idempotency,
            data=data,
        )


Handling = tuple[Tlp, tuple[str, ...]]


# ------------------------------------------------------------------------------------------ reading


def readable_crisis(book: Book, principal: Principal, crisis_id: str) -> CrisisRecord:
    """The crisis if it exists and `principal` may read it; the same error otherwise (no hint it exists)."""
    record = book.crises.get(crisis_id)
    if record is None or not audience.may_read_crisis(principal, record.state):
        raise DomainError("not_found", f"no crisis {crisis_id}")
    return record


def readable_indicator(record: CrisisRecord, principal: Principal, indicator_id: str) -> IndicatorRecord:
    """The indicator if `principal` may read it; the same error whether it is missing or outside its TLP."""
    indicator = record.indicators.get(indicator_id)
    if indicator is None or not indicator.readable_by(principal, record.state.mode):
        raise DomainError("not_found", f"no indicator {indicator_id} in crisis {record.state.id}")
    return indicator


def require(principal: Principal, roles: Iterable[Role], action: str) -> None:
    """Refuse a key whose role may not do `action`."""
    roles = sorted(roles)
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise DomainError("forbidden", f"a {principal.role} key may not {action} (needs {allowed})")


def _known(w: Write, recipients: Sequence[str], field: str) -> None:
    unknown = [(i, org) for i, org in enumerate(recipients) if not w.registered(org)]
    if unknown:
        names = ", ".join(org for _, org in unknown)
        raise DomainError(
            "unknown_org",
            f"not a registered organisation: {names}",
            errors=[{"field": f"{field}.{i}", "message": f"{org} is not registered"} for i, org in unknown],
        )


# ------------------------------------------------------------------------------------------ crises


def open_crisis(book: Book, w: Write, req: CrisisCreate) -> Envelope:
    """`crisis.opened` (monitoring) or `crisis.activated` (declared at a level) for a new crisis."""
    if not rules.may_open(w.actor, req.status):
        raise DomainError("forbidden", f"a {w.actor.role} key may not open a crisis as {req.status}")
    if not w.actor.may_touch_mode(req.mode):
        raise DomainError("forbidden", "an exercise controller's key acts only on exercise crises")
    problem = audience.handling_problem(req.tlp, tuple(req.tlprecipients))
    if problem is not None:
        raise DomainError(*problem)
    _known(w, req.tlprecipients, "tlprecipients")
    if req.roster is None:
        roster = deadlines.default_roster(req.tlp, req.tlprecipients, w.actor.org, w.providers(req.mode))
    else:
        roster = _roster(w, req.tlp, tuple(req.tlprecipients), w.actor.org, req.roster)
    state, transition = rules.opened(w.ids("crisis"), req, w.actor, w.at, roster, w.retention_s)
    data = CrisisChanged(crisis=state, transition=transition, expected_version=0)
    return _crisis_event(w, w.ids("event"), state, data)


def transition(book: Book, w: Write, crisis_id: str, req: TransitionRequest) -> Envelope:
    """The event for one status change; stale versions and forbidden moves are refused here first."""
    require(w.actor, (Role.COORDINATOR,), "change a crisis's status")
    record = readable_crisis(book, w.actor, crisis_id)
    if not w.actor.may_touch_mode(record.state.mode):
        raise DomainError("forbidden", "an exercise controller's key acts only on exercise crises")
    try:
        state, change = rules.plan(record.state, req, w.actor, w.at)
    except TransitionError as exc:
        raise DomainError(exc.code, exc.message, current_version=record.state.version) from exc
    data = CrisisChanged(crisis=state, transition=change, expected_version=req.expected_version)
    return _crisis_event(w, w.ids(crisis_id, "transition"), state, data)


def set_clock(book: Book, w: Write, crisis_id: str, req: ClockRequest) -> Envelope:
    """`crisis.clock_changed`: a coordinator sets the roster of expected providers or the deadlines."""
    require(w.actor, (Role.COORDINATOR,), "change a crisis's roster or deadlines")
    record = readable_crisis(book, w.actor, crisis_id)
    state = record.state
    if not w.actor.may_touch_mode(state.mode):
        raise DomainError("forbidden", "an exercise controller's key acts only on exercise crises")
    roster = state.roster
    if req.roster is not None:
        roster = _roster(w, state.tlp, state.tlprecipients, state.created_by, req.roster)
    change = rules.clock_planned(state, req, w.actor, w.at, roster)
    try:
        after = rules.clock_changed(state, change, req.expected_version)
    except TransitionError as exc:
        raise DomainError(exc.code, exc.message, current_version=state.version) from exc
    data = ClockChanged(crisis=after, change=change, expected_version=req.expected_version)
    handling = (after.tlp, audience.crisis_recipients(after))
    return w.envelope(
        EventType.CRISIS_CLOCK_CHANGED,
        w.ids(crisis_id, "clock"),
        after,
        handling,
        data.model_dump(mode="json"),
    )


def _roster(
    w: Write, tlp: Tlp, recipients: tuple[str, ...], declarer: str, roster: Sequence[str]
) -> tuple[str, ...]:
    """A roster a coordinator named: registered organisations within the crisis's audience."""
    _known(w, roster, "roster")
    if tlp.names_recipients:
        audience_ = {*recipients, declarer}
        outside = [(i, org) for i, org in enumerate(roster) if org not in audience_]
        if outside:
            raise DomainError(
                "recipients_outside_crisis",
                f"not in the crisis's audience: {', '.join(org for _, org in outside)}",
                errors=[
                    {"field": f"roster.{i}", "message": f"{org} is not a recipient"} for i, org in outside
                ],
            )
    return tuple(dict.fromkeys(roster))


def _crisis_event(w: Write, event_id: str, state: CrisisState, data: CrisisChanged) -> Envelope:
    kind = rules.event_type_for(data.transition.from_status, data.transition.to_status)
    handling = (state.tlp, audience.crisis_recipients(state))
    return w.envelope(kind, event_id, state, handling, data.model_dump(mode="json"))


# ------------------------------------------------------------------------------------------ indicators


def share_handling(w: Write, record: CrisisRecord, tlp: Tlp | None, recipients: list[str] | None) -> Handling:
    """A batch's label and recipients: the crisis's unless stricter, within the crisis's audience, only
    registered organisations, and, when recipients are named, the crisis's declarer among them."""
    crisis = record.state
    label = tlp or crisis.tlp
    if audience.is_wider(label, crisis.tlp):
        message = f"TLP:{label.upper()} is wider than the crisis's TLP:{crisis.tlp.upper()}"
        raise DomainError("tlp_wider_than_crisis", message)
    if recipients is None:
        recipients = list(crisis.tlprecipients) if label.names_recipients else []
    problem = audience.handling_problem(label, tuple(recipients))
    if problem is not None:
        raise DomainError(*problem)
    _known(w, recipients, "tlprecipients")
    outside = audience.within_crisis(crisis, tuple(recipients))
    if outside:
        raise DomainError(
            "recipients_outside_crisis", f"not in the audience of crisis {crisis.id}: {', '.join(outside)}"
        )
    if label.names_recipients:
        recipients = [*recipients, crisis.created_by]
    return label, tuple(dict.fromkeys(recipients))


def share(
    book: Book,
    w: Write,
    crisis_id: str,
    valid: Sequence[tuple[int, dict[str, Any]]],
    tlp: Tlp | None,
    recipients: list[str] | None,
) -> list[Envelope]:
    """One event per valid item: `indicator.shared` for a new value, `indicator.sighted` for a value
    already shared within the same audience and readable by the sharer (earlier, or in this batch)."""
    require(w.actor, SHARERS, "share indicators")
    record = readable_crisis(book, w.actor, crisis_id)
    if not takes_follow_ups(record.state):
        raise DomainError("crisis_closed", f"crisis {crisis_id} is closed and takes no indicators")
    handling = share_handling(w, record, tlp, recipients)
    in_batch: dict[tuple[str, str], str] = {}
    envelopes = []
    # The events of a batch differ only in id and data: the first of each type is built and validated,
    # the others are copies of it with their own id and data (data is not validated by the envelope).
    first: dict[EventType, Envelope] = {}

    def envelope(kind: EventType, event_id: str, body: dict[str, Any]) -> Envelope:
        like = first.get(kind)
        if like is None or type(event_id) is not str or not 0 < len(event_id) <= MAX_ID:
            made = w.envelope(kind, event_id, record.state, handling, body)
            first.setdefault(kind, made)
            return made
        return replaced(like, id=event_id, data=body)

    for index, data in valid:
        event_id = w.ids(crisis_id, "indicator", index)
        identity = (str(data["kind"]), str(data["canonical"]))
        existing = in_batch.get(identity) or record.repeat_of(*identity, w.actor, handling)
        if existing is None:
            in_batch[identity] = event_id
            body = {**data, "indicator_id": event_id, "shared_by": w.actor.org}
            envelopes.append(envelope(EventType.INDICATOR_SHARED, event_id, body))
        else:
            body = {**data, "indicator_id": existing, "sighted_by": w.actor.org}
            envelopes.append(envelope(EventType.INDICATOR_SIGHTED, event_id, body))
    return envelopes


def retract(book: Book, w: Write, crisis_id: str, indicator_id: str, reason: str) -> Envelope:
    """Withdraw an indicator: by the organisation that shared it, or a coordinator."""
    require(w.actor, SHARERS, "retract indicators")
    record = readable_crisis(book, w.actor, crisis_id)
    indicator = readable_indicator(record, w.actor, indicator_id)
    if w.actor.role is not Role.COORDINATOR and w.actor.org != indicator.data.shared_by:
        message = "only the organisation that shared an indicator, or a coordinator, may retract it"
        raise DomainError("forbidden", message)
    data = {"indicator_id": indicator_id, "retracted_by": w.actor.org, "reason": reason}
    # The retraction reaches exactly the audience of the indicator it withdraws.
    handling = (indicator.tlp, indicator.follow_up_recipients)
    event_id = w.ids(crisis_id, indicator_id, "retract")
    return w.envelope(EventType.INDICATOR_RETRACTED, event_id, record.state, handling, data)


def report_action(
    book: Book, w: Write, crisis_id: str, indicator_id: str, outcome: ActionOutcome, note: str
) -> Envelope:
    """A provider's receipt or outcome for one indicator it may read."""
    require(w.actor, (Role.PROVIDER,), "report actions")
    record = readable_crisis(book, w.actor, crisis_id)
    indicator = readable_indicator(record, w.actor, indicator_id)
    if not takes_follow_ups(record.state):
        raise DomainError("crisis_closed", f"crisis {crisis_id} is closed")
    data = ActionReported(
        indicator_id=indicator_id, outcome=outcome, provider_org=w.actor.org, at=w.at, note=note
    )
    handling = (indicator.tlp, indicator.follow_up_recipients)
    event_id = w.ids(crisis_id, indicator_id, outcome, "action")
    return w.envelope(
        EventType.ACTION_REPORTED, event_id, record.state, handling, data.model_dump(mode="json")
    )


# ------------------------------------------------------------------------------------------ erasure


def erase(book: Book, w: Write, crisis_id: str, indicator_id: str | None, reason: str) -> Envelope:
    """`indicator.erased` (one indicator's value, context and notes) or `crisis.erased` (the crisis's free
    text): a coordinator makes values unrecoverable now, with a reason; its key is destroyed once the
    event is in the log."""
    if not retention.may_erase(w.actor):
        raise DomainError("forbidden", f"a {w.actor.role} key may not erase values (needs coordinator)")
    record = readable_crisis(book, w.actor, crisis_id)
    data = {"indicator_id": indicator_id, "erased_by": w.actor.org, "reason": reason}
    if indicator_id is None:
        if record.state.erased:
            raise DomainError("conflict", f"the free text of crisis {crisis_id} is already erased")
        handling = (record.state.tlp, audience.crisis_recipients(record.state))
        event_id = w.ids(crisis_id, "erase")
        return w.envelope(EventType.CRISIS_ERASED, event_id, record.state, handling, data)
    indicator = readable_indicator(record, w.actor, indicator_id)
    if indicator.data.erased:
        raise DomainError("conflict", f"indicator {indicator_id} is already erased")
    # The erasure reaches exactly the audience of the indicator it erases.
    handling = (indicator.tlp, indicator.follow_up_recipients)
    event_id = w.ids(crisis_id, indicator_id, "erase")
    return w.envelope(EventType.INDICATOR_ERASED, event_id, record.state, handling, data)
