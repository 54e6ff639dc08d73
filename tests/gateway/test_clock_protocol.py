"""The stream protocol's part of the clock, with plain values: backfill, and who hears of a miss."""

from __future__ import annotations

import pytest

from crisis.domain.enums import EventType, Mode, Role, Tlp
from crisis.domain.principal import Principal
from crisis.gateway import protocol
from crisis.gateway.protocol import Facts, Filter, ProtocolError


def test_backfill_is_asked_in_the_query_or_a_message_and_never_with_a_cursor() -> None:
    assert protocol.parse_query("crisis=c1&backfill=true").backfill
    assert not protocol.parse_query("crisis=c1").backfill
    message = protocol.parse_message('{"type": "subscribe", "crises": ["c1"], "backfill": true}')
    assert isinstance(message, protocol.Subscription) and message.backfill
    with pytest.raises(ProtocolError, match="true or false"):
        protocol.parse_query("backfill=maybe")
    with pytest.raises(ProtocolError, match="true or false"):
        protocol.parse_message('{"type": "subscribe", "backfill": "yes"}')
    with pytest.raises(ProtocolError, match="not both"):
        protocol.parse_query("backfill=1&cursor=AQAAAAAAAAA")


def _overdue(provider: str, tlp: Tlp = Tlp.AMBER, recipients: tuple[str, ...] = ()) -> Facts:
    return Facts("c1", EventType.CLOCK_OVERDUE, None, tlp, Mode.LIVE, "", recipients, provider)


@pytest.mark.parametrize(
    ("org", "role", "facts", "admitted"),
    [
        ("hub", Role.COORDINATOR, _overdue("silent"), True),
        ("silent", Role.PROVIDER, _overdue("silent"), True),
        ("prompt", Role.PROVIDER, _overdue("silent"), False),
        ("bka", Role.AUTHORITY, _overdue("silent"), False),
        ("press", Role.OBSERVER, _overdue("silent", Tlp.CLEAR), False),
        # Within its TLP as always: a coordinator outside a RED indicator's recipients hears nothing.
        ("other-hub", Role.COORDINATOR, _overdue("silent", Tlp.RED, ("silent", "hub")), False),
        ("hub", Role.COORDINATOR, _overdue("silent", Tlp.RED, ("silent", "hub")), True),
    ],
)
def test_an_overdue_event_is_for_coordinators_and_the_late_provider(
    org: str, role: Role, facts: Facts, admitted: bool
) -> None:
    assert protocol.admits(Principal(org=org, role=role, key_id="k"), Filter(), facts) is admitted


def test_a_provider_may_subscribe_to_its_own_overdue_events_an_observer_may_not() -> None:
    only = Filter(types=frozenset({EventType.CLOCK_OVERDUE}))
    assert protocol.forbidden(Principal(org="silent", role=Role.PROVIDER, key_id="k"), only) is None
    assert protocol.forbidden(Principal(org="press", role=Role.OBSERVER, key_id="k"), only) is not None
