"""Where a client command's log lines go: stderr, warnings and above, so stdout stays its output."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import structlog
    from stamina.instrumentation import RetryDetails

# Quick retries pass in silence (the final error says enough); a long pause is announced.
ANNOUNCED_WAIT_S = 2.0
_own_process = False


def own_process() -> None:
    """Called by `main` for the process's own command line: its logging is ours to configure."""
    global _own_process
    _own_process = True


def for_client_command() -> None:
    """Before a command talks to the servers: warnings to stderr, long retry pauses announced.

    A caller that passed its own argv to `main` (a test, an embedding program) keeps its logging.
    """
    if not _own_process:
        return
    import logging

    import stamina.instrumentation
    import structlog

    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    stamina.instrumentation.set_on_retry_hooks([_announce_long_wait])


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    import structlog

    # Looked up at each use, not bound once: whatever stderr is now receives the line.
    return structlog.PrintLogger(sys.stderr)


def _announce_long_wait(details: RetryDetails) -> None:
    if details.wait_for >= ANNOUNCED_WAIT_S:
        print(
            f"crisis: waiting {details.wait_for:.0f} s before retrying ({details.caused_by})", file=sys.stderr
        )
