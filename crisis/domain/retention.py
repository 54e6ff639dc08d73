"""Retention after closure and erasure: who may erase, when a closed crisis's values end, and the event
that records it. Pure; the keys themselves are destroyed by the crypto adapter (crisis.crypto)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Final

from crisis.domain import audience
from crisis.domain.crisis import CrisisState
from crisis.domain.deadlines import CLOCK_SOURCE
from crisis.domain.enums import EventType, Role, Status
from crisis.domain.envelope import Envelope
from crisis.domain.events import RetentionExpired
from crisis.domain.principal import Principal

_NAMESPACE: Final = uuid.UUID("0b7e4f52-3c1d-5a86-9e20-6d4a8f1c3b75")


def may_erase(principal: Principal) -> bool:
    """Only a coordinator (the hub) erases: an erasure takes values away from every recipient."""
    return principal.role is Role.COORDINATOR


def expires_at(state: CrisisState) -> datetime | None:
    """When a closed crisis's keys are due for destruction; None while it is open or once done."""
    if state.status is not Status.CLOSED or state.retention_expired_at is not None:
        return None
    # A closed crisis never changes again (closed is final), so its last update is its closure.
    return state.updated_at + timedelta(seconds=state.retention_after_close_s)


def erase_text(state: CrisisState) -> CrisisState:
    """The crisis without its free text."""
    return state.model_copy(update={"summary": "", "erased": True})


def expiry_id(crisis_id: str) -> str:
    """One id per crisis, whichever process writes it: the fold keeps the event once."""
    return str(uuid.uuid5(_NAMESPACE, f"{crisis_id}/retention"))


def expiry_event(state: CrisisState, at: datetime) -> Envelope:
    """The `crisis.retention_expired` event for a closed crisis whose retention has ended."""
    data = RetentionExpired(closed_at=state.updated_at, retention_after_close_s=state.retention_after_close_s)
    return Envelope(
        id=expiry_id(state.id),
        source=CLOCK_SOURCE,
        type=EventType.CRISIS_RETENTION_EXPIRED,
        time=at,
        subject=state.id,
        tlp=state.tlp,
        mode=state.mode,
        tlprecipients=audience.crisis_recipients(state),
        data=data.model_dump(mode="json"),
    )
