"""CLI tests read the commands' stdout while the servers they talk to run in the same process."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def server_logs_on_stderr() -> Iterator[None]:
    """Server lines (one access line per request) go to stderr, as in a deployed process, not into the
    stdout a test parses (structlog unconfigured prints to stdout)."""
    structlog.configure(logger_factory=lambda *_: structlog.PrintLogger(sys.stderr))
    try:
        yield
    finally:
        structlog.reset_defaults()
