"""Webhook endpoints and what each may receive: the stream's audience rule, applied per endpoint."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from crisis.domain.audience import may_read_event
from crisis.domain.enums import EventType, Mode, Role
from crisis.domain.envelope import Envelope
from crisis.domain.principal import Principal


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class Endpoint(BaseModel):
    """An organisation's registered receiver, bound to the key that registered it (its role and modes)."""

    model_config = ConfigDict(frozen=True)

    id: str
    org: str
    key_id: str
    role: Role
    exercise_only: bool = False
    url: str
    types: tuple[EventType, ...]
    modes: tuple[Mode, ...] = (Mode.LIVE,)
    description: str = ""
    created_at: AwareDatetime

    @property
    def principal(self) -> Principal:
        return Principal(org=self.org, role=self.role, key_id=self.key_id, exercise_only=self.exercise_only)


def wants(endpoint: Endpoint, env: Envelope) -> bool:
    """True when `env` goes to `endpoint`: a type and mode it asked for, written after it was registered,
    and an event its organisation could read on the stream (the one audience rule, never restated)."""
    if env.type not in endpoint.types or env.mode not in endpoint.modes:
        return False
    if env.time < endpoint.created_at:
        # Registering is not a backfill: the log is re-read at every start, old events stay where they are.
        return False
    return may_read_event(endpoint.principal, env)


def may_see_delivery(principal: Principal, endpoint_org: str, event: Envelope) -> bool:
    """Who may see a delivery's record: the endpoint's organisation, and the hub (coordinators) for any
    delivery of an event it may itself read: a dead letter never tells the hub of an event it may not read."""
    if principal.org == endpoint_org:
        return True
    return principal.role is Role.COORDINATOR and may_read_event(principal, event)
