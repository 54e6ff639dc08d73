"""Server-Sent Events: `GET /v1/events` on the gateway's port, for clients that cannot hold a WebSocket.

The same subscription as the WebSocket (query `crisis`, `type`, `kind`, `mode`, `cursor`; or the
`Last-Event-ID` header, which wins), the same bearer key, audience rule, fan-out, cursors, catch-up, gap
and slow-consumer policy: an SSE stream is a fan-out `Subscriber` whose transport re-frames each message
the fan-out writes (WebSocket text frames, built once for every client) as one SSE event. Every event's
`id` is its cursor, so a reconnecting `EventSource` or SSE library resumes exactly where it stopped.

The request arrives through the WebSocket server's `process_request`; once accepted, this module takes the
TCP connection over (its own asyncio protocol) and the WebSocket machinery lets go of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from typing import TYPE_CHECKING, Any, Final

import structlog
from websockets.http11 import Request, Response
from websockets.protocol import State

from crisis.domain.principal import Principal
from crisis.gateway import cursor as cursors
from crisis.gateway import protocol
from crisis.gateway.fanout import Subscriber
from crisis.gateway.protocol import ProtocolError, Subscription

if TYPE_CHECKING:
    from crisis.gateway.server import Gateway, StreamConnection

log = structlog.get_logger(__name__)

PATH: Final = "/v1/events"
MEDIA_TYPE: Final = "text/event-stream"
# Sent once: browsers and SSE libraries wait this long before reconnecting after a cut.
RETRY_MS: Final = 1000
_HEAD = (
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream; charset=utf-8\r\n"
    "Cache-Control: no-store\r\n"
    # No length and no chunking: the body is the stream and ends with the connection.
    "Connection: close\r\n"
    # Proxies that buffer responses (nginx) would hold events back: ask them not to.
    "X-Accel-Buffering: no\r\n"
    "\r\n"
    f"retry: {RETRY_MS}\n"  # joins the first event
).encode()
_CONTROL = b'{"type":"'
_CURSOR = b'"cursor":"'


def subscription(request: Request, query: str) -> Subscription:
    """The query's subscription; a `Last-Event-ID` (a cursor) replaces the query's `cursor`."""
    sub = protocol.parse_query(query)
    last = request.headers.get("Last-Event-ID")
    if last is None or not last.strip():
        return sub
    text = last.strip()
    try:
        return Subscription(sub.filter, cursors.decode(text), text)
    except cursors.CursorError as exc:
        raise ProtocolError(f"invalid Last-Event-ID: {exc}") from exc


def reframe(frames: bytes) -> bytes:
    """Unmasked WebSocket text frames (as the fan-out writes them) -> SSE events, one per message.

    CloudEvents are `message` events with `id: <cursor>`; control messages name their type in `event:`
    (`subscribed`, `state`, `gap`, `closing`) and carry their cursor as `id` when they have one.
    """
    out: list[bytes] = []
    pos, end = 0, len(frames)
    while pos < end:
        n = frames[pos + 1] & 0x7F
        pos += 2
        if n == 126:
            (n,) = struct.unpack_from("!H", frames, pos)
            pos += 2
        elif n == 127:
            (n,) = struct.unpack_from("!Q", frames, pos)
            pos += 8
        out.append(event(frames[pos : pos + n]))
        pos += n
    return b"".join(out)


def event(payload: bytes) -> bytes:
    """One JSON message as an SSE event (compact JSON has no raw newline: one `data` line)."""
    if payload.startswith(_CONTROL):
        message: dict[str, Any] = json.loads(payload)
        head = f"event: {message['type']}\n".encode()
        cursor = message.get("cursor")
        if isinstance(cursor, str) and cursor:
            head += b"id: " + cursor.encode() + b"\n"
        return head + b"data: " + payload + b"\n\n"
    at = payload.rfind(_CURSOR)
    cursor_bytes = payload[at + len(_CURSOR) : -2] if at >= 0 else b""
    return b"id: " + cursor_bytes + b"\ndata: " + payload + b"\n\n"


class _Detached(asyncio.Transport):
    """What the WebSocket connection is left holding once the stream took its socket: writes go nowhere."""

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        pass

    def write_eof(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0


class Link:
    """The part of the fan-out's `proto` the SSE stream offers: OPEN until closing starts."""

    def __init__(self) -> None:
        self.state = State.OPEN


class Reframing:
    """The transport the fan-out and catch-up write to: WebSocket frames in, SSE events out."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.inner = transport

    def write(self, data: bytes) -> None:
        self.inner.write(reframe(data))

    def get_write_buffer_size(self) -> int:
        return self.inner.get_write_buffer_size()


class EventStream(asyncio.Protocol):
    """One SSE response, from the taken-over socket to its close."""

    def __init__(self, number: int, principal: Principal, token: str) -> None:
        self.number = number
        self.principal = principal
        self.token = token
        self.protocol = Link()  # `protocol.state`, as on a WebSocket connection
        self.lost = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.subscriber: Subscriber | None = None

    def take(self, transport: asyncio.Transport) -> None:
        """Become the socket's protocol and send the response head."""
        self.transport = transport
        transport.set_protocol(self)
        transport.write(_HEAD)

    def data_received(self, data: bytes) -> None:
        pass  # a client sends nothing after its request; a pipelined request is not served

    def eof_received(self) -> bool:
        return True  # the client half-closed: keep sending until it closes fully

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.state = State.CLOSED
        if not self.lost.done():
            self.lost.set_result(None)

    def send(self, payload: bytes) -> None:
        """A control message written directly (not through the fan-out)."""
        if self.transport is not None and self.protocol.state is State.OPEN:
            self.transport.write(event(payload))

    def heartbeat(self, limit: int) -> None:
        """A comment line: keeps idle proxies from cutting the response and finds dead peers."""
        transport = self.transport
        open_ = transport is not None and self.protocol.state is State.OPEN
        if open_ and transport is not None and transport.get_write_buffer_size() <= limit:
            transport.write(b": heartbeat\n\n")

    def close(self, code: int, reason: str, cursor: str | None, timeout: float) -> None:
        """A `closing` event with the cursor to resume from, then the end of the response."""
        transport = self.transport
        if transport is None or self.protocol.state is not State.OPEN:
            return
        self.protocol.state = State.CLOSING
        with contextlib.suppress(Exception):
            transport.write(event(protocol.closing(code, reason, cursor)))
        transport.close()  # flushes what is buffered; a client that stopped reading is cut below
        asyncio.get_running_loop().call_later(timeout, transport.abort)


class Sse:
    """The gateway's SSE streams: accepted in its `process_request`, served on its fan-out."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.streams: set[EventStream] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def answer(self, conn: StreamConnection, request: Request, query: str) -> Response:
        """Refuse (400/401/403/406/429), or take the socket over and stream; the response is then moot."""
        gw = self.gateway
        try:
            wanted = subscription(request, query)
            token = protocol.bearer(request.headers.get("Authorization"))
        except ProtocolError as exc:
            return conn.respond(400, f"{exc}\n")
        accept = request.headers.get("Accept", MEDIA_TYPE)
        if not any(t in accept for t in (MEDIA_TYPE, "*/*", "text/*")):
            return conn.respond(406, f"{PATH} answers {MEDIA_TYPE} only.\n")
        principal = gw.keys.authenticate(token) if token is not None else None
        if token is None or principal is None:
            if token is not None:
                gw.metrics.auth_failed(conn, conn.number, "unknown_key")
            text = "Send Authorization: Bearer <key>." if token is None else "The API key is unknown."
            response = conn.respond(401, f"{text}\n")
            response.headers["WWW-Authenticate"] = 'Bearer realm="crisis-bus"'
            return response
        reason = protocol.forbidden(principal, wanted.filter)
        if reason is not None:
            return conn.respond(403, f"{reason}\n")
        if gw.full(principal):
            return conn.respond(429, "This key holds its maximum of open streams.\n")
        stream = EventStream(conn.number, principal, token)
        stream.take(conn.transport)
        # The WebSocket connection lets go: its writes go nowhere and it sees its connection as lost.
        conn.transport = _Detached()
        conn.connection_lost(None)
        task = asyncio.create_task(self._serve(stream, wanted), name=f"sse-{conn.number}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return conn.respond(200, "")

    async def _serve(self, stream: EventStream, wanted: Subscription) -> None:
        gw, principal = self.gateway, stream.principal
        assert stream.transport is not None
        sub = Subscriber(principal, wanted.filter, Reframing(stream.transport), stream.protocol, owner=stream)
        stream.subscriber = sub
        gw.hold(principal)
        self.streams.add(stream)
        task: asyncio.Task[None] | None = None
        try:
            with structlog.contextvars.bound_contextvars(conn=stream.number, org=principal.org):
                log.info("sse_subscribed", filter=wanted.filter.to_json(), resume=bool(wanted.cursor))
                task = gw.subscribe(stream, sub, wanted)
                beat = gw.settings.gateway_heartbeat_s
                while not stream.lost.done():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(stream.lost), beat)
                    stream.heartbeat(gw.settings.gateway_buffer_bytes)
                log.info("sse_closed")
        finally:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            gw.fanout.detach(sub)
            gw.reads.unsubscribed(sub)
            self.streams.discard(stream)
            gw.release(principal)

    def drop(self, stream: EventStream, code: int, reason: str) -> None:
        """Close one stream with its cursor (the fan-out's slow-consumer or failure path, revocation)."""
        sub = stream.subscriber
        cursor = sub.cursor if sub is not None and sub.cursor else None
        if sub is not None:
            self.gateway.fanout.detach(sub)
        stream.close(code, reason, cursor, min(10.0, self.gateway.settings.gateway_heartbeat_s))

    async def aclose(self, grace: float) -> None:
        """Shutdown: every stream gets `closing` with its cursor; the sockets are cut after `grace`."""
        for stream in list(self.streams):
            self.drop(stream, protocol.GOING_AWAY, "gateway shutting down")
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            for stream in list(self.streams):
                if stream.transport is not None:
                    stream.transport.abort()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
