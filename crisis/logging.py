"""Logging set up once: JSON lines when stderr is not a terminal, a console renderer when it is."""

from __future__ import annotations

import logging
import sys

import structlog

_SECRET_FIELDS = frozenset({"key", "token", "authorization", "api_key", "secret"})


def _drop_secrets(_: object, __: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
    """Keys never reach a log line, whatever a caller binds."""
    for name in _SECRET_FIELDS.intersection(event):
        event[name] = "[redacted]"
    return event


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    as_json = not sys.stderr.isatty() if json is None else json
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library: route them to stderr at WARNING.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
