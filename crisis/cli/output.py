"""Where a client command's log lines go: stderr, warnings and above, so stdout stays its output."""

from __future__ import annotations

import logging
import sys
from typing import Any

import stamina.instrumentation
import structlog
from stamina.instrumentation import RetryDetails

# Quick retries pass in silence (the final error says enough); a long pause is announced.
ANNOUNCED_WAIT_S = 2.0


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    # Looked up at each use, not bound once: whatever stderr is now (a test swaps it) receives the line.
    return structlog.PrintLogger(sys.stderr)


def log_warnings_to_stderr() -> None:
    """Reconnects and retries worth a line on stderr; nothing on stdout, which scripts read."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    stamina.instrumentation.set_on_retry_hooks([_announce_long_wait])


def _announce_long_wait(details: RetryDetails) -> None:
    if details.wait_for >= ANNOUNCED_WAIT_S:
        print(
            f"crisis: waiting {details.wait_for:.0f} s before retrying ({details.caused_by})", file=sys.stderr
        )
