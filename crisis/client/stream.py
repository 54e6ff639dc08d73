"""The live stream as an async iterator: reconnects with backoff and jitter, resumes from its cursor, dedupes.

    async with stream("ws://127.0.0.1:8001/v1/stream", key, types=INDICATOR_EVENTS) as events:
        async for event in events:
            handle(event)            # then persist event.cursor to resume there after a restart

`Stream.cursor` is the cut after the last message handed out; a reconnect continues exactly there.
Without a cursor, a stream that names its crises starts with their history from the beginning
(`backfill`, on by default for named crises): a client started mid-crisis misses nothing shared before.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlencode

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from crisis.endpoints import STREAM_URL_ENV

log = structlog.get_logger(__name__)

SUBPROTOCOL: Final = Subprotocol("cloudevents.json")
SLOW_CONSUMER: Final = 4008
# Close codes after which trying again cannot help: credentials, the subscription or a message were refused.
_REFUSED: Final = frozenset({1003, 1007, 1008, 1009})
# HTTP answers to the handshake that say the same.
_REFUSED_HTTP: Final = frozenset({400, 401, 403, 404})


class StreamUnavailable(Exception):
    """The first connection failed `connect_attempts` times: nothing answers at the stream's address."""


class StreamRefused(Exception):
    """The gateway refused the key or the subscription; reconnecting would not change its mind."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# The events a provider acts on: a new indicator, and the same one shared again (a sighting). Both carry
# `data.indicator_id`, the id to acknowledge: for a sighting, the existing indicator's.
INDICATOR_EVENTS: Final = ("indicator.shared", "indicator.sighted")


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the stream: a CloudEvent (`is_event`) or, when asked for, a control message."""

    type: str
    body: dict[str, Any]

    @property
    def is_event(self) -> bool:
        return "specversion" in self.body

    @property
    def id(self) -> str | None:
        value = self.body.get("id")
        return value if isinstance(value, str) else None

    @property
    def subject(self) -> str | None:
        value = self.body.get("subject")
        return value if isinstance(value, str) else None

    @property
    def data(self) -> dict[str, Any]:
        value = self.body.get("data")
        return value if isinstance(value, dict) else {}

    @property
    def cursor(self) -> str | None:
        value = self.body.get("cursor")
        return value if isinstance(value, str) else None


class _Seen:
    """Event ids recently handed out, oldest forgotten first: bounded memory."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, event_id: str) -> bool:
        """False when the id was seen already."""
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True


class Stream:
    def __init__(
        self,
        url: str,
        key: str,
        *,
        crises: Iterable[str] | None = None,
        types: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        mode: str | None = None,
        cursor: str | None = None,
        backfill: bool | None = None,
        control: bool = False,
        backoff: float = 0.1,
        backoff_max: float = 10.0,
        dedupe: int = 10_000,
        max_size: int | None = 64 * 1024 * 1024,
        open_timeout: float = 10.0,
        connect_attempts: int | None = None,
    ) -> None:
        self.url = url
        self.cursor = cursor
        self.connects = 0
        self.gaps: list[dict[str, Any]] = []
        self._key = key
        self._params = {
            name: ",".join(values)
            for name, values in (("crisis", crises), ("type", types), ("kind", kinds))
            if values is not None
        }
        if mode is not None:
            self._params["mode"] = mode
        # None: the history of the crises named, when some are; never for "every crisis" unless asked.
        self.backfill = crises is not None if backfill is None else backfill
        self._control = control
        self._backoff, self._backoff_max = backoff, backoff_max
        self._failures = 0
        self._seen = _Seen(dedupe)
        self._max_size = max_size
        self._open_timeout = open_timeout
        # None: keep trying forever (a bot outliving a gateway restart); a number bounds the first connect.
        self._connect_attempts = connect_attempts
        self._ws: ClientConnection | None = None
        self._subscribed = False
        self._held: list[Message] = []  # read by connect() before the caller iterates
        self._closed = False

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Message:
        if self._held:
            return self._held.pop(0)
        while not self._closed:
            ws = self._ws or await self._connect()
            try:
                raw = await ws.recv()
            except ConnectionClosed as exc:
                self._lost(exc)
                continue
            message = self._accept(raw)
            if message is not None:
                return message
        raise StopAsyncIteration

    async def connect(self) -> None:
        """Connect now and wait for the gateway's `subscribed`: nothing published after this is missed."""
        while self._ws is None or not self._subscribed:
            ws = self._ws or await self._connect()
            try:
                message = self._accept(await ws.recv())
            except ConnectionClosed as exc:
                self._lost(exc)
                continue
            if message is not None:
                self._held.append(message)

    async def close(self) -> None:
        self._closed = True
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    def address(self) -> str:
        params = dict(self._params)
        if self.cursor:
            params["cursor"] = self.cursor
        elif self.backfill:
            # Only until the first cursor arrives (with `subscribed`): reconnects continue from it.
            params["backfill"] = "true"
        return f"{self.url}?{urlencode(params)}" if params else self.url

    # ------------------------------------------------------------------ connecting

    async def _connect(self) -> ClientConnection:
        while True:
            if self._failures:
                await asyncio.sleep(self._delay())
            try:
                ws = await connect(
                    self.address(),
                    additional_headers={"Authorization": f"Bearer {self._key}"},
                    subprotocols=[SUBPROTOCOL],
                    compression=None,
                    max_size=self._max_size,
                    open_timeout=self._open_timeout,
                )
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in _REFUSED_HTTP:
                    body = exc.response.body.decode(errors="replace").strip() if exc.response.body else ""
                    raise StreamRefused(f"HTTP {status}: {body}", status=status) from exc
                self._failed(f"HTTP {status}")
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                self._failed(f"{type(exc).__name__}: {exc}")
            else:
                self.connects += 1
                self._ws = ws
                return ws

    def _delay(self) -> float:
        """Exponential backoff with full jitter: reconnecting clients spread out instead of stampeding."""
        ceiling = min(self._backoff_max, self._backoff * 2 ** (self._failures - 1))
        return random.uniform(0, ceiling)  # noqa: S311  # jitter, not a secret

    def _failed(self, why: str) -> None:
        self._failures += 1
        log.info("stream_connect_failed", url=self.url, error=why, attempt=self._failures)
        limit = self._connect_attempts
        if limit is not None and self.connects == 0 and self._failures >= limit:
            raise StreamUnavailable(
                f"cannot reach the stream at {self.url} ({why}): is the gateway running (crisis up)? "
                f"or set {STREAM_URL_ENV} / --url"
            )

    def _lost(self, exc: ConnectionClosed) -> None:
        self._ws, self._subscribed = None, False
        close = exc.rcvd
        code, reason = (close.code, close.reason) if close is not None else (None, "")
        if code in _REFUSED:
            raise StreamRefused(f"closed by the gateway ({code}): {reason}", code=code) from exc
        if code == SLOW_CONSUMER and self.cursor is None:
            _, sep, cursor = reason.rpartition("; cursor=")
            self.cursor = cursor if sep else None
        # A lost connection counts as one failure: the first retry comes soon, repeated ones back off.
        self._failures += 1
        log.info("stream_lost", code=code, reason=reason, cursor=self.cursor)

    # ------------------------------------------------------------------ messages

    def _accept(self, raw: str | bytes) -> Message | None:
        try:
            body = json.loads(raw)
        except ValueError:
            log.warning("stream_not_json", size=len(raw))
            return None
        if not isinstance(body, dict):
            return None
        kind = str(body.get("type", ""))
        message = Message(kind, body)
        if kind == "subscribed":
            self._failures, self._subscribed = 0, True
        elif kind == "gap":
            self.gaps.append(body)
            log.warning("stream_gap", reason=body.get("reason"), missing=body.get("missing"))
        if message.is_event and message.id is not None and not self._seen.add(message.id):
            self._advance(message)
            return None  # already handed out (a duplicate across a reconnect)
        self._advance(message)
        if message.is_event or (self._control and kind not in ("subscribed", "closing")):
            return message
        return None

    def _advance(self, message: Message) -> None:
        if message.cursor:
            self.cursor = message.cursor


def stream(url: str, key: str, **options: Any) -> Stream:
    """The stream at `url` with API key `key`; options as for `Stream` (crises, types, kinds, mode...)."""
    return Stream(url, key, **options)
