"""What every write route shares: stable ids for retries, readable crises, verdicts as HTTP answers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from crisis.api.metrics import ApiMetrics
from crisis.api.problems import Problem
from crisis.bus.base import PublishError, PublishUnknown
from crisis.domain.audience import may_read_crisis
from crisis.domain.book import CrisisRecord, Outcome
from crisis.domain.envelope import Envelope
from crisis.domain.principal import Principal
from crisis.ledger import Ledger

_NAMESPACE = uuid.UUID("5b0e1f7c-6c1d-4b8e-9a51-2f1c0c8e6a10")

# A verdict that is not "accepted" becomes this HTTP status.
_STATUS = {
    "stale_version": 409,
    "invalid_transition": 409,
    "conflict": 409,
    "crisis_closed": 409,
    "unknown_crisis": 404,
    "unknown_indicator": 404,
    "mode_mismatch": 409,
    "malformed": 422,
}


def stable_id(principal: Principal, idempotency_key: str | None, *parts: object) -> str:
    """A random id, or, with an Idempotency-Key, the same id on every retry of the same request."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    name = ":".join([principal.org, idempotency_key, *map(str, parts)])
    return str(uuid.uuid5(_NAMESPACE, name))


def raise_for(outcome: Outcome) -> None:
    if not outcome.accepted:
        raise Problem(_STATUS.get(outcome.code, 409), outcome.message, code=outcome.code)


def crisis_for(ledger: Ledger, principal: Principal, crisis_id: str) -> CrisisRecord:
    """The crisis if it exists and the caller may read it; 404 otherwise (no hint that it exists)."""
    record = ledger.book.crises.get(crisis_id)
    if record is None or not may_read_crisis(principal, record.state):
        raise Problem(404, f"no crisis {crisis_id}", code="not_found")
    if not principal.may_touch_mode(record.state.mode):
        raise Problem(404, f"no crisis {crisis_id}", code="not_found")
    return record


async def commit(ledger: Ledger, metrics: ApiMetrics, envelopes: Sequence[Envelope]) -> list[Outcome]:
    """`ledger.write`, counted: events Kafka acknowledged, writes it refused or left unknown."""
    try:
        outcomes = await ledger.write(envelopes)
    except PublishUnknown:
        metrics.publish_failures.labels("unknown").inc()
        raise
    except PublishError:
        metrics.publish_failures.labels("refused").inc()
        raise
    metrics.published.inc(len(envelopes))
    return outcomes
