"""Where a client command's log lines go: stderr, warnings and above, so stdout stays its output."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


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
