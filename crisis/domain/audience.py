"""Who may receive what: the one implementation of role, TLP 2.0 and mode rules for every read path."""

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
) -> bool:
    """True when `principal` is entitled to an event or state carrying these handling attributes."""
    if not principal.may_touch_mode(mode):
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
