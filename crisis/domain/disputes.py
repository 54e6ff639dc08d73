"""Disputes: a provider's `disagree` opens one; the indicator's sharer or the hub confirms or retracts it.

An indicator has at most one open dispute: the first `disagree` opens it (its id is that action's event
id), later ones join it. A resolution is the event `dispute.resolved`, addressed to the indicator's whole
audience; when it retracts, every provider that holds the indicator is told to put the content back,
and answers with the action outcome `reinstated` (allowed only then). Who may see and resolve a
dispute is decided here only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from crisis.domain.enums import Role
from crisis.domain.principal import Principal


class DisputeStatus(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    RETRACTED = "retracted"


class Resolution(StrEnum):
    """What the sharer or the hub decided: the indicator stands, or it was wrong and is withdrawn."""

    CONFIRMED = "confirmed"
    RETRACTED = "retracted"


class DisputeResolved(BaseModel):
    """Data of `dispute.resolved`. With `retracted`, the indicator is withdrawn and every provider that
    acted on it is asked to reinstate the content (answering with the action outcome `reinstated`)."""

    model_config = ConfigDict(extra="forbid")

    dispute_id: str
    indicator_id: str
    outcome: Resolution
    resolved_by: str
    reason: str = Field(default="", max_length=2000)


@dataclass
class Dispute:
    id: str
    indicator_id: str
    shared_by: str
    opened_at: datetime
    raised_by: list[str] = field(default_factory=list)
    status: DisputeStatus = DisputeStatus.OPEN
    resolved_by: str = ""
    resolved_at: datetime | None = None
    reason: str = ""


def may_see(principal: Principal, dispute: Dispute) -> bool:
    """The hub, the sharer and the providers that raised it."""
    return (
        principal.role is Role.COORDINATOR
        or principal.org == dispute.shared_by
        or principal.org in dispute.raised_by
    )


def may_resolve(role: Role | None, org: str, dispute: Dispute) -> bool:
    """The hub or the organisation that shared the indicator (an unstamped event: by its organisation)."""
    return role is Role.COORDINATOR or (org == dispute.shared_by and role is not Role.OBSERVER)


def refusal(dispute: Dispute | None, dispute_id: str, role: Role | None, org: str) -> tuple[str, str] | None:
    """Why this writer may not resolve the dispute now, as (code, message); None when it may."""
    if dispute is None:
        return "not_found", f"no dispute {dispute_id}"
    if not may_resolve(role, org, dispute):
        return "forbidden", "only the hub or the organisation that shared the indicator may resolve it"
    if dispute.status is not DisputeStatus.OPEN:
        return "conflict", f"dispute {dispute_id} is already {dispute.status}"
    return None


def current(disputes: dict[str, Dispute], indicator_id: str) -> Dispute | None:
    """The indicator's latest dispute (disputes are few: a scan)."""
    found = None
    for dispute in disputes.values():
        if dispute.indicator_id == indicator_id:
            found = dispute
    return found


def raised(
    disputes: dict[str, Dispute], event_id: str, indicator_id: str, shared_by: str, org: str, at: datetime
) -> Dispute:
    """A `disagree` folded: opens a dispute on the indicator, or joins its open one."""
    dispute = current(disputes, indicator_id)
    if dispute is None or dispute.status is not DisputeStatus.OPEN:
        dispute = Dispute(id=event_id, indicator_id=indicator_id, shared_by=shared_by, opened_at=at)
        disputes[event_id] = dispute
    if org not in dispute.raised_by:
        dispute.raised_by.append(org)
    return dispute


def resolved(dispute: Dispute, data: DisputeResolved, at: datetime) -> None:
    dispute.status = DisputeStatus(data.outcome.value)
    dispute.resolved_by = data.resolved_by
    dispute.resolved_at = at
    dispute.reason = data.reason


def may_reinstate(dispute: Dispute | None) -> bool:
    """`reinstated` answers a retraction by dispute, and nothing else."""
    return dispute is not None and dispute.status is DisputeStatus.RETRACTED
