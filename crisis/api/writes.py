"""What every route shares: domain refusals and fold verdicts as HTTP answers, and the counted commit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from crisis.api.metrics import ApiMetrics
from crisis.api.problems import Problem
from crisis.bus.base import PublishError, PublishUnknown
from crisis.domain.book import Outcome
from crisis.domain.commands import DomainError, Write
from crisis.domain.envelope import Envelope
from crisis.ledger import Ledger

# A refusal (by a command or by the fold) becomes this HTTP status; anything unlisted is a 409.
STATUS = {
    "forbidden": 403,
    "not_found": 404,
    "unknown_crisis": 404,
    "unknown_indicator": 404,
    "stale_version": 409,
    "invalid_transition": 409,
    "conflict": 409,
    "crisis_closed": 409,
    "mode_mismatch": 409,
    "batch_too_large": 413,
    "malformed": 422,
    "handling_mismatch": 422,
    "tlp_wider_than_crisis": 422,
    "recipients_required": 422,
    "recipients_forbidden": 422,
    "recipients_outside_crisis": 422,
    "unknown_org": 422,
    "idempotency_key_reused": 422,
    "warning_listed": 422,
}


def problem(code: str, message: str, **extra: object) -> Problem:
    return Problem(STATUS.get(code, 409), message, code=code, **extra)


@contextmanager
def refusals() -> Iterator[None]:
    """Turn a command's DomainError into its problem+json answer."""
    try:
        yield
    except DomainError as exc:
        raise problem(exc.code, exc.message, **exc.extra) from exc


def replay(ledger: Ledger, write: Write) -> list[Envelope] | None:
    """The events of the first request made with this Idempotency-Key when this request repeats it; None
    for a new request. The same key with a different request is refused here, before any rule is checked:
    a retry is answered as the first request was, whatever has happened since, and never by its result."""
    if write.idempotency is None:
        return None
    scope, _, digest = write.idempotency.partition(".")
    first = ledger.book.requests.get(scope)
    if first is None:
        return None
    if first.digest != digest:
        raise problem("idempotency_key_reused", REUSED)
    return first.envelopes


REUSED = "this Idempotency-Key was used before with a different request; use a new key for a new request"


def raise_for(outcome: Outcome) -> None:
    if not outcome.accepted:
        raise problem(outcome.code, outcome.message)


async def commit(
    ledger: Ledger, metrics: ApiMetrics, envelopes: Sequence[Envelope], *, new_ids: bool = False
) -> list[Outcome]:
    """`ledger.write`, counted: events Kafka acknowledged, writes it refused or left unknown. `new_ids`:
    the events' ids were made at random for this request (see Ledger.write).

    A reused Idempotency-Key is answered before anything is published (the ledger knows the first
    request's fingerprint from the log), and also by the fold when two processes race.
    """
    try:
        outcomes = await ledger.write(envelopes, new_ids=new_ids)
    except PublishUnknown:
        metrics.publish_failures.labels("unknown").inc()
        raise
    except PublishError:
        metrics.publish_failures.labels("refused").inc()
        raise
    for outcome in outcomes:
        if outcome.code == "idempotency_key_reused":
            raise_for(outcome)
    metrics.published.inc(len(envelopes))
    return outcomes
