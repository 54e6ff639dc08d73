"""Logging set up once: every line, ours and the libraries' (aiokafka, uvicorn, websockets), goes through one
structlog formatter: JSON lines when stderr is not a terminal, a console renderer when it is.

Context bound with `structlog.contextvars` (request id, connection id, org) reaches library lines too; keys
never reach a line; long strings (a cursor, a filter, anything a client sent) are cut.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from types import TracebackType
from typing import TextIO

import structlog
from structlog.types import EventDict, Processor

_SECRET_FIELDS = frozenset({"key", "token", "authorization", "api_key", "secret"})
# Longest string value written as is, and most items of a list; a client controls cursors, filters, ids.
MAX_VALUE_CHARS = 200
MAX_ITEMS = 20
# Our own tracebacks are kept whole (they are ours, and cutting them hides the cause).
_WHOLE_FIELDS = frozenset({"exception", "exc_info", "stack"})
# Libraries whose INFO is chatter (websockets' DEBUG is every frame): quiet unless the level is debug.
_QUIET = {"aiokafka": logging.WARNING, "kafka": logging.WARNING, "websockets": logging.WARNING}
_QUIET_DEBUG = {"websockets": logging.INFO}


def _drop_secrets(_: object, __: str, event: EventDict) -> EventDict:
    """Keys never reach a log line, whatever a caller binds."""
    for name in _SECRET_FIELDS.intersection(event):
        event[name] = "[redacted]"
    return event


def clip(value: object, limit: int = MAX_VALUE_CHARS, depth: int = 3) -> object:
    """`value` with every string longer than `limit` cut, inside lists and dicts too (lists to MAX_ITEMS)."""
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}...[{len(value) - limit} more]"
    if depth <= 0:
        return value
    if isinstance(value, dict):
        return {clip(k, limit, 0): clip(v, limit, depth - 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [clip(v, limit, depth - 1) for v in value[:MAX_ITEMS]]
        return items if len(value) <= MAX_ITEMS else [*items, f"...[{len(value) - MAX_ITEMS} more]"]
    return value


def _truncate(_: object, __: str, event: EventDict) -> EventDict:
    for name, value in event.items():
        if name not in _WHOLE_FIELDS and isinstance(value, str | dict | list | tuple):
            event[name] = clip(value, MAX_VALUE_CHARS * 4 if name == "event" else MAX_VALUE_CHARS)
    return event


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a line is written (a test may swap it).

    Ours, so configuring again replaces it and leaves other handlers (pytest's) alone.
    """

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: object) -> None:
        pass


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    as_json = not sys.stderr.isatty() if json is None else json
    renderer: Processor = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
        _truncate,
    ]
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = _Handler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    floors = _QUIET_DEBUG if numeric <= logging.DEBUG else _QUIET
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(numeric, floors.get(name, logging.NOTSET)))
    logging.captureWarnings(True)  # warnings.warn() lines too, instead of plain text on stderr
    if as_json:
        sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """A crash is one JSON line too."""
    structlog.get_logger("crisis").critical("uncaught_exception", exc_info=(kind, exc, tb))


class FailureLog:
    """Decides which failures (failed authentication) are logged: a few per client address per window.

    Anyone can send a wrong key as often as they like; the log must stay readable and bounded all the same.
    A line that follows suppressed failures says how many were not logged. The table of addresses is
    bounded too: the oldest is forgotten first.
    """

    def __init__(self, per_address: int = 5, window_s: float = 60.0, addresses: int = 10_000) -> None:
        self.per_address = per_address
        self.window_s = window_s
        self.addresses = addresses
        # address -> [window start, failures logged in it, failures not logged since the last line]
        self._seen: OrderedDict[str, list[float]] = OrderedDict()

    def admit(self, address: str, now: float | None = None) -> int | None:
        """The failures suppressed before this one when it should be logged; None to stay quiet."""
        now = time.monotonic() if now is None else now
        entry = self._seen.get(address)
        if entry is None or now - entry[0] >= self.window_s:
            suppressed = int(entry[2]) if entry is not None else 0
            self._seen[address] = [now, 1, 0]
            self._seen.move_to_end(address)
            while len(self._seen) > self.addresses:
                self._seen.popitem(last=False)
            return suppressed
        if entry[1] < self.per_address:
            entry[1] += 1
            suppressed, entry[2] = int(entry[2]), 0
            return suppressed
        entry[2] += 1
        return None

    def warn(
        self, logger: structlog.typing.FilteringBoundLogger, event: str, address: str, **fields: object
    ) -> None:
        """Log `event` for a failure from `address`, unless this address already had its share."""
        suppressed = self.admit(address)
        if suppressed is not None:
            logger.warning(event, client=address, suppressed=suppressed, **fields)
