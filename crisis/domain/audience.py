"""Who may receive what: the one implementation of role, TLP 2.0 and mode rules for every read path.

The fold (what may be written), the routes and the report (what may be answered) and the gateway (what
may be delivered) all ask these functions; none of them restates a rule.
"""

from __future__ import annotations

from crisis.domain.crisis import CrisisState
from crisis.domain.enums import EventType, Mode, Role, Tlp
from crisis.domain.envelope import Envelope
from crisis.domain.principal import Principal


def may_read(
    principal: Principal,
    *,
    type: EventType,
    tlp: Tlp,
    mode: Mode,
    author_org: str,
    recipients: tuple[str, ...],
    concerns: str | None = None,
) -> bool:
    """True when `principal` is entitled to an event or state carrying these handling attributes.

    `concerns` is the provider a clock event is about: such an event reaches that provider and
    coordinators only (within its TLP as always), not the other providers of the crisis.
    """
    if not principal.may_touch_mode(mode):
        return False
    if type.is_clock and principal.role is not Role.COORDINATOR and principal.org != concerns:
        return False
    if principal.role is Role.OBSERVER:
        # Observers see crisis state only, and only what is TLP:CLEAR.
        return type.is_crisis_state and tlp is Tlp.CLEAR
    if tlp.names_recipients:
        return principal.org == author_org or principal.org in recipients
    return True


def may_read_event(principal: Principal, env: Envelope) -> bool:
    """The rule applied to one event as it stands in the log."""
    return may_read(
        principal,
        type=env.type,
        tlp=env.tlp,
        mode=env.mode,
        author_org=env.author_org,
        recipients=env.tlprecipients,
        concerns=concerned(env),
    )


def concerned(env: Envelope) -> str | None:
    """The provider a clock event is about (None for every other event)."""
    if not env.type.is_clock:
        return None
    provider = env.data.get("provider_org")
    return provider if isinstance(provider, str) else None


def may_read_indicator(
    principal: Principal, *, tlp: Tlp, recipients: tuple[str, ...], shared_by: str, mode: Mode
) -> bool:
    """The rule applied to one indicator as it stands (its own TLP, its sharer as the author)."""
    return may_read(
        principal,
        type=EventType.INDICATOR_SHARED,
        tlp=tlp,
        mode=mode,
        author_org=shared_by,
        recipients=recipients,
    )


def may_read_crisis(principal: Principal, state: CrisisState) -> bool:
    """The rule applied to a crisis's current state (its creator counts as the author)."""
    return may_read(
        principal,
        type=EventType.CRISIS_OPENED,
        tlp=state.tlp,
        mode=state.mode,
        author_org=state.created_by,
        recipients=state.tlprecipients,
    )


_STRICTNESS = {tlp: rank for rank, tlp in enumerate(Tlp)}


def is_wider(tlp: Tlp, than: Tlp) -> bool:
    """True when `tlp` would let more readers see something than `than` does (e.g. GREEN vs AMBER)."""
    return _STRICTNESS[tlp] < _STRICTNESS[than]


def follow_up_recipients(tlp: Tlp, recipients: tuple[str, ...], author_org: str) -> tuple[str, ...]:
    """Who gets an event about something sent to named organisations (an action on, or the retraction of,
    a RED indicator): the same organisations plus that thing's author, who is not this event's author."""
    if not tlp.names_recipients:
        return ()
    return tuple(dict.fromkeys((*recipients, author_org)))


def crisis_recipients(state: CrisisState) -> tuple[str, ...]:
    """The organisations named on a crisis's own events: its recipients and, always, its declarer.

    A later status change is written by some coordinator who may not be the declarer; naming the declarer
    keeps the organisation that declared a RED crisis inside it whoever acts next.
    """
    if not state.tlp.names_recipients:
        return ()
    return tuple(dict.fromkeys((*state.tlprecipients, state.created_by)))


def within_crisis(state: CrisisState, recipients: tuple[str, ...]) -> tuple[str, ...]:
    """Recipients that lie outside the crisis's audience (none when the crisis names no recipients)."""
    if not state.tlp.names_recipients:
        return ()
    audience = {*state.tlprecipients, state.created_by}
    return tuple(r for r in recipients if r not in audience)


def handling_problem(tlp: Tlp, recipients: tuple[str, ...]) -> tuple[str, str] | None:
    """Why a TLP label and its recipients do not fit together: (code, message), or None when they do."""
    if tlp.names_recipients and not recipients:
        return "recipients_required", f"TLP:{tlp.upper()} needs at least one recipient organisation"
    if recipients and not tlp.names_recipients:
        return "recipients_forbidden", f"TLP:{tlp.upper()} names no recipients"
    return None


def same_audience(
    a: tuple[Tlp, tuple[str, ...]], a_author: str, b: tuple[Tlp, tuple[str, ...]], b_author: str
) -> bool:
    """True when two events reach exactly the same readers: the same label and, for RED and AMBER+STRICT,
    the same organisations once each event's author (who always reads it) is counted in."""
    if a[0] is not b[0]:
        return False
    return not a[0].names_recipients or {a_author, *a[1]} == {b_author, *b[1]}
