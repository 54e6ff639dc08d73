"""Commands and reads for disputes: who sees which, and the `dispute.resolved` event a resolution writes."""

from __future__ import annotations

from crisis.domain import disputes
from crisis.domain.book import Book, CrisisRecord
from crisis.domain.commands import DomainError, Write, readable_crisis
from crisis.domain.disputes import Dispute, DisputeResolved, Resolution
from crisis.domain.enums import EventType
from crisis.domain.envelope import Envelope
from crisis.domain.principal import Principal


def visible(record: CrisisRecord, principal: Principal, dispute: Dispute) -> bool:
    """A dispute is seen by the hub, the sharer and its raisers, and only by those who may read its
    indicator: no one learns of an indicator outside their audience through a dispute."""
    indicator = record.indicators.get(dispute.indicator_id)
    return (
        indicator is not None
        and indicator.readable_by(principal, record.state.mode)
        and disputes.may_see(principal, dispute)
    )


def listed(book: Book, principal: Principal, crisis_id: str) -> list[Dispute]:
    record = readable_crisis(book, principal, crisis_id)
    return [d for d in record.disputes.values() if visible(record, principal, d)]


def resolve(
    book: Book, w: Write, crisis_id: str, dispute_id: str, outcome: Resolution, reason: str
) -> Envelope:
    """`dispute.resolved`, addressed to the whole audience of the disputed indicator."""
    record = readable_crisis(book, w.actor, crisis_id)
    dispute = record.disputes.get(dispute_id)
    if dispute is None or not visible(record, w.actor, dispute):
        raise DomainError("not_found", f"no dispute {dispute_id} in crisis {crisis_id}")
    if not w.actor.may_touch_mode(record.state.mode):
        raise DomainError("forbidden", "an exercise controller's key acts only on exercise crises")
    problem = disputes.refusal(dispute, dispute_id, w.actor.role, w.actor.org)
    if problem is not None:
        raise DomainError(*problem)
    indicator = record.indicators[dispute.indicator_id]
    data = DisputeResolved(
        dispute_id=dispute_id,
        indicator_id=dispute.indicator_id,
        outcome=outcome,
        resolved_by=w.actor.org,
        reason=reason,
    )
    handling = (indicator.tlp, indicator.follow_up_recipients)
    event_id = w.ids(crisis_id, dispute_id, "resolve")
    return w.envelope(
        EventType.DISPUTE_RESOLVED, event_id, record.state, handling, data.model_dump(mode="json")
    )
