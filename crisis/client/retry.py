"""The one retry policy of every HTTP caller: 429, 503 and connection errors, honouring Retry-After.

stamina runs the loop (exponential backoff with jitter, a total time budget); this module only says
what is worth another attempt and how long the server asked us to wait.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

RETRIED_STATUSES: Final = frozenset({429, 503})
# Methods that change nothing, so a repeat is harmless; a write is repeated only with an Idempotency-Key.
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Policy:
    """How hard to try: attempts and total time, backoff bounds, and the longest Retry-After obeyed."""

    attempts: int = 4
    timeout_s: float = 30.0
    wait_initial_s: float = 0.2
    wait_max_s: float = 5.0
    wait_jitter_s: float = 0.5
    # A server asking for a longer pause than this gets its answer passed to the caller instead.
    retry_after_max_s: float = 30.0


DEFAULT_POLICY: Final = Policy()


class RetryableResponse(Exception):
    """A 429 or 503 worth another attempt; carries the response for the last-attempt error message."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds the server asked us to wait (delta-seconds or an HTTP date), or None when it did not say."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def may_retry(method: str, headers: httpx.Headers) -> bool:
    """A repeat never duplicates: reads always, writes only when they carry an Idempotency-Key."""
    return method.upper() in SAFE_METHODS or "Idempotency-Key" in headers


def backoff_hook(policy: Policy) -> Callable[[Exception], bool | float]:
    """stamina's `on=`: False to give up, True for its own backoff, or the seconds to wait."""

    def hook(exc: Exception) -> bool | float:
        if isinstance(exc, httpx.TransportError):
            return True
        if not isinstance(exc, RetryableResponse):
            return False
        asked = retry_after(exc.response)
        if asked is None:
            return True
        if asked > policy.retry_after_max_s:
            return False
        # Jitter on top of the server's pause: clients told the same second do not return together.
        return asked + random.uniform(0, min(1.0, policy.wait_jitter_s))  # noqa: S311  # jitter, not a secret

    return hook
