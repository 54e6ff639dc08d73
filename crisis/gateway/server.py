"""The WebSocket gateway: `GET /v1/stream` on its own port, fed by this process's ledger.

    async with Gateway(settings, ledger, keys, bus) as gw:   # the caller runs the ledger
        gw.port

Handshake: a bearer key is checked before the upgrade (HTTP 401/403/400/404); a browser without the header
sends `{"type": "auth", "token": ...}` first, within `gateway_auth_timeout_s`, or is closed with 1008.
Then the subscription starts: from its cursor (catch-up, then live) or with the current state of each
matching crisis (then live). See protocol.py for the messages and fanout.py for the live path.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import socket
import ssl
from collections import Counter
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Origin, Subprotocol

from crisis.audit.reads import ReadAudit
from crisis.bus.base import Bus, Topology
from crisis.config import Settings
from crisis.domain.envelope import utcnow
from crisis.domain.principal import Principal
from crisis.gateway import cursor as cursors
from crisis.gateway import protocol, sse
from crisis.gateway.backfill import backfill_skips
from crisis.gateway.fanout import Fanout, HasState, Subscriber
from crisis.gateway.frames import text_frame
from crisis.gateway.metrics import GatewayMetrics
from crisis.gateway.protocol import Auth, Filter, ProtocolError, Subscription
from crisis.gateway.resume import CatchUp, Fell, Start, plan
from crisis.gateway.snapshot import states
from crisis.keys import KeyStore
from crisis.ledger import Ledger

log = structlog.get_logger(__name__)

# Catch-up readers of Kafka running at once; more wait their turn (their live frames are held meanwhile),
# so a reconnect storm after a restart costs a bounded number of Kafka consumers. Catch-ups served from the
# recent items need no reader and no turn.
MAX_CATCH_UPS = 16
# How long the log's topology (partitions, retention start) is reused for resumes.
TOPOLOGY_TTL_S = 1.0
# How long a cursor past this process's view of the log's end may wait for its reader to catch up.
END_WAIT_S = 1.0
# The kernel's send buffer per connection, fixed rather than auto-tuned (which grows it to 4 MiB on Linux):
# a client's backlog is then this plus `gateway_buffer_bytes` in the transport, not a moving target.
# Linux doubles the value asked for; 256 KiB in flight covers a 20 MB/s client at 10 ms round trip.
SEND_BUFFER_BYTES = 128 * 1024
# On shutdown, how long clients get to read their buffers and the 1001 close; then the sockets are cut
# (a client that was not reading resumes from its cursor all the same).
SHUTDOWN_GRACE_S = 2.0
# How often open streams' keys are re-checked (revocation from another process, expiry): well within 1 s.
KEY_CHECK_S = 0.5
_ids = itertools.count(1)


class StreamConnection(ServerConnection):
    """A connection and what its handshake established."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.number = next(_ids)
        self.principal: Principal | None = None
        self.token: str | None = None
        self.subscription = Subscription(Filter())
        self.subscriber: Subscriber | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)


class Peer(Protocol):
    """A stream's connection as the subscription code sees it: a WebSocket or an SSE response."""

    @property
    def protocol(self) -> HasState: ...


class Gateway:
    def __init__(
        self, settings: Settings, ledger: Ledger, keys: KeyStore, bus: Bus, reads: ReadAudit | None = None
    ) -> None:
        self.settings = settings
        # Subscriptions are recorded for the read audit (crisis.audit.reads); its owner writes it.
        self.reads = reads if reads is not None else ReadAudit()
        self.ledger = ledger
        self.keys = keys
        self.bus = bus
        self.port = 0
        self.closed_slow = 0
        # Open streams per key: one key may not exhaust the gateway (a looping bot, a leaked key).
        self._per_key: Counter[str] = Counter()
        self._server: Server | None = None
        self._fanout: Fanout | None = None
        self._catch_up: CatchUp | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._describing = asyncio.Lock()
        self._described: tuple[float, Topology] | None = None
        # Long enough for a reading client to answer a close; a client that stopped reading is cut then.
        self._close_timeout = min(10.0, settings.gateway_heartbeat_s)
        self.metrics = GatewayMetrics(self)
        self.sse = sse.Sse(self)  # GET /v1/events: the same subscriptions over Server-Sent Events

    @property
    def fanout(self) -> Fanout:
        if self._fanout is None:
            raise RuntimeError("the gateway is not running")
        return self._fanout

    # ------------------------------------------------------------------ lifetime

    async def __aenter__(self) -> Gateway:
        # Serve nothing from a half-read log: a state or a verdict from a stale book would be wrong.
        await self.ledger.caught_up.wait()
        # What exists now (modules, the book folded so far) lives as long as the process. A full garbage
        # collection re-scans all of it and stalls every stream for tens of milliseconds (84 ms measured
        # with 1,000 clients): collect once, then leave those objects out of later collections.
        gc.collect()
        gc.freeze()
        topology = await self.bus.describe()
        origin = cursors.origin(topology.log_id or topology.cluster_id, topology.topic)
        s = self.settings
        # Taken together with registering the listener, with no await in between: the cut is exact.
        vector = [
            self.ledger.positions.get(p, topology.earliest.get(p, 0)) for p in range(topology.partitions)
        ]
        self._fanout = Fanout(
            origin,
            vector,
            self.ledger.book,
            limit=s.gateway_buffer_bytes,
            on_drop=self._drop,
            open_state=State.OPEN,
            recent_bytes=s.gateway_recent_bytes,
        )
        self._catch_up = CatchUp(
            self.bus,
            self.ledger.book,
            self.ledger.duplicates,
            origin,
            s.gateway_buffer_bytes,
            drain_timeout=s.gateway_heartbeat_s,
            open_state=State.OPEN,
            recent=self._fanout.recent,
            readers=asyncio.Semaphore(MAX_CATCH_UPS),
        )
        self.ledger.listeners.append(self._fanout.publish)
        self.metrics.attach(self._fanout)
        try:
            self._server = await serve(
                self._handle,
                s.gateway_host,
                s.gateway_port,
                origins=[*(cast(Origin, o) for o in s.gateway_allowed_origins), None],
                select_subprotocol=_select_subprotocol,
                compression=None,  # frames are shared between connections: no per-connection deflate
                process_request=self._process_request,
                ping_interval=s.gateway_heartbeat_s,
                ping_timeout=s.gateway_heartbeat_s,
                close_timeout=self._close_timeout,
                max_size=s.gateway_max_message_bytes,
                # websockets' own writes (pings, close) wait only above our limit, where we close anyway.
                write_limit=s.gateway_buffer_bytes,
                create_connection=StreamConnection,
                server_header=None,
                ssl=_tls(s),
            )
        except BaseException:
            self.ledger.listeners.remove(self._fanout.publish)
            self.metrics.detach()
            raise
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._sweeper = asyncio.create_task(self._sweep(), name="gateway-key-sweep")
        log.info("gateway_listening", host=s.gateway_host, port=self.port, partitions=len(vector))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fanout is not None:
            with contextlib.suppress(ValueError):
                self.ledger.listeners.remove(self._fanout.publish)
        self.metrics.detach()
        if self._sweeper is not None:
            self._sweeper.cancel()
        server = self._server
        if server is None:
            return
        await self.sse.aclose(min(self._close_timeout, SHUTDOWN_GRACE_S))
        for ws in list(server.all_connections):
            if ws.protocol.state is State.OPEN:
                self._close(_stream(ws), protocol.GOING_AWAY, "gateway shutting down")
            else:  # already closing (a slow consumer waiting for its timer): no reason to wait for it
                ws.transport.abort()
        server.close(close_connections=False)
        try:
            async with asyncio.timeout(min(self._close_timeout, SHUTDOWN_GRACE_S)):
                await server.wait_closed()
        except TimeoutError:
            for conn in list(server.all_connections):
                conn.transport.abort()
            await server.wait_closed()
        log.info("gateway_stopped", port=self.port)

    def stats(self) -> dict[str, int]:
        fanout = self.fanout
        return {
            "connections": len(self._server.connections) if self._server else 0,
            "subscribers": fanout.subscribers,
            "groups": fanout.groups,
            "delivered": fanout.delivered,
            "closed_slow": self.closed_slow,
        }

    # ------------------------------------------------------------------ handshake

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        conn = _stream(ws)
        url = urlsplit(request.path)
        ops = self.metrics.answer(conn, url.path)  # /metrics, /livez, /readyz
        if ops is not None:
            return ops
        if url.path == sse.PATH:
            return self.sse.answer(conn, request, url.query)
        if url.path != protocol.PATH:
            return conn.respond(404, f"Not found: the stream is at {protocol.PATH}\n")
        try:
            subscription = protocol.parse_query(url.query)
            token = protocol.bearer(request.headers.get("Authorization"))
        except ProtocolError as exc:
            return conn.respond(400, f"{exc}\n")
        conn.subscription = subscription
        if token is None:
            return None  # a browser: the first message authenticates
        principal = self.keys.authenticate(token)
        if principal is None:
            self.metrics.auth_failed(conn, conn.number, "unknown_key")
            response = conn.respond(401, "The API key is unknown, expired or revoked.\n")
            response.headers["WWW-Authenticate"] = 'Bearer realm="crisis-bus"'
            return response
        reason = protocol.forbidden(principal, subscription.filter)
        if reason is not None:
            return conn.respond(403, f"{reason}\n")
        if self._full(principal):
            return conn.respond(429, "This key holds its maximum of open streams.\n")
        conn.principal, conn.token = principal, token
        return None

    def _full(self, principal: Principal) -> bool:
        return self._per_key[principal.key_id] >= self.settings.gateway_max_streams_per_key

    # What the SSE streams share with the WebSocket ones: the per-key limit and the subscription start.
    def full(self, principal: Principal) -> bool:
        return self._full(principal)

    def hold(self, principal: Principal) -> None:
        self._per_key[principal.key_id] += 1

    def release(self, principal: Principal) -> None:
        self._per_key[principal.key_id] -= 1
        if not self._per_key[principal.key_id]:
            del self._per_key[principal.key_id]

    def subscribe(self, peer: Peer, sub: Subscriber, subscription: Subscription) -> asyncio.Task[None] | None:
        return self._start(peer, sub, subscription)

    async def _authenticate(self, conn: StreamConnection) -> tuple[Principal, Subscription] | None:
        timeout = self.settings.gateway_auth_timeout_s
        try:
            async with asyncio.timeout(timeout):
                message = await conn.recv()
        except TimeoutError:
            self._close(conn, protocol.POLICY_VIOLATION, f"send an auth message within {timeout:g}s")
            return None
        except ConnectionClosed:
            return None
        try:
            auth = protocol.parse_message(message)
        except ProtocolError as exc:
            self._close(conn, exc.code, str(exc))
            return None
        if not isinstance(auth, Auth):
            self._close(conn, protocol.POLICY_VIOLATION, "the first message must be of type 'auth'")
            return None
        principal = self.keys.authenticate(auth.token)
        if principal is None:
            self.metrics.auth_failed(conn, conn.number, "unknown_key")
            self._close(conn, protocol.POLICY_VIOLATION, "the API key is unknown, expired or revoked")
            return None
        subscription = auth.subscription or conn.subscription
        reason = protocol.forbidden(principal, subscription.filter)
        if reason is not None:
            self._close(conn, protocol.POLICY_VIOLATION, reason)
            return None
        conn.principal, conn.token = principal, auth.token
        return principal, subscription

    # ------------------------------------------------------------------ one connection

    async def _handle(self, ws: ServerConnection) -> None:
        conn = _stream(ws)
        principal, subscription = conn.principal, conn.subscription
        if principal is None:
            got = await self._authenticate(conn)
            if got is None:
                return
            principal, subscription = got
        if self._full(principal):  # the handshake's check can race; this one holds
            self._close(conn, protocol.TRY_AGAIN_LATER, "this key holds its maximum of open streams")
            return
        self._per_key[principal.key_id] += 1
        try:
            with structlog.contextvars.bound_contextvars(conn=conn.number, org=principal.org):
                await self._serve(conn, principal, subscription)
        finally:
            self._per_key[principal.key_id] -= 1
            if not self._per_key[principal.key_id]:
                del self._per_key[principal.key_id]

    async def _serve(self, conn: StreamConnection, principal: Principal, subscription: Subscription) -> None:
        sub = Subscriber(principal, subscription.filter, conn.transport, conn.protocol, owner=conn)
        conn.subscriber = sub
        log.info("stream_subscribed", filter=subscription.filter.to_json(), resume=bool(subscription.cursor))
        task = self._start(conn, sub, subscription)
        try:
            async for message in conn:
                try:
                    request = protocol.parse_message(message)
                    if isinstance(request, Auth):
                        raise ProtocolError("already authenticated")
                    reason = protocol.forbidden(principal, request.filter)
                    if reason is not None:
                        raise ProtocolError(reason)
                except ProtocolError as exc:
                    self._close(conn, exc.code, str(exc))
                    break
                await _cancel(task)
                sub.filter = request.filter
                task = self._start(conn, sub, request)
        except ConnectionClosed:
            pass
        finally:
            await _cancel(task)
            self.fanout.detach(sub)
            self.reads.unsubscribed(sub)
            log.info("stream_closed", code=conn.close_code)

    def _start(self, conn: Peer, sub: Subscriber, subscription: Subscription) -> asyncio.Task[None] | None:
        """A fresh subscription starts here and now; a resume runs its catch-up in a task."""
        p = sub.principal
        self.reads.subscribed(
            sub, p.org, p.key_id, subscription.filter.to_json(), subscription.cursor_text, lambda: sub.cursor
        )
        if subscription.cursor is None and not subscription.backfill:
            self.fanout.attach(sub)
            first = [protocol.subscribed(sub.filter, sub.cursor, sub.principal)]
            first += states(self.ledger.book, sub.principal, sub.filter, sub.cursor)
            sub.transport.write(b"".join(text_frame(m) for m in first))
            return None
        return asyncio.create_task(self._resume(conn, sub, subscription.cursor))

    async def _resume(self, conn: Peer, sub: Subscriber, cursor: cursors.Cursor | None) -> None:
        """From `cursor`, or, for a backfill (no cursor), from the start of the retained log."""
        catch_up = self._catch_up
        assert catch_up is not None
        topology = await self._topology()
        if cursor is None:
            start = Start(tuple(topology.earliest.get(p, 0) for p in range(topology.partitions)), None)
            sub.skip = backfill_skips(self.ledger.book, sub.filter)
        else:
            sub.skip = frozenset()
            start = plan(cursor, self.fanout.origin, topology, await self._log_end(cursor))
        if conn.protocol.state is not State.OPEN:
            return
        until = self.fanout.attach(sub, floor=start.offsets)
        end = self.fanout.recent.end  # taken with the attach: items from here on are held live frames
        first = [protocol.subscribed(sub.filter, sub.cursor, sub.principal)]
        if start.gap is not None and cursor is not None:
            first.append(start.gap)
            log.warning("stream_gap", cursor=cursors.encode(cursor.origin, cursor.offsets))
        sub.transport.write(b"".join(text_frame(m) for m in first))
        try:
            await catch_up.run(sub, start.offsets, until, end)
        except Fell as exc:
            if sub.attached and conn.protocol.state is State.OPEN:
                log.info("stream_catch_up_slow", error=str(exc))
                self.fanout.detach(sub)
                self._drop(sub, protocol.SLOW_CONSUMER, "slow consumer")
            return
        self.fanout.go_live(sub)

    async def _topology(self) -> Topology:
        """The log's partitions and retention start, asked of Kafka at most once a second.

        A reconnect storm would otherwise open one Kafka client per resuming connection just to ask.
        """
        async with self._describing:
            now = asyncio.get_running_loop().time()
            if self._described is None or now - self._described[0] > TOPOLOGY_TTL_S:
                self._described = (now, await self.bus.describe())
            return self._described[1]

    async def _log_end(self, cursor: cursors.Cursor) -> dict[int, int]:
        """The log's end as this process's reader knows it, waiting briefly when the cursor is past it.

        A cursor from a gateway further along may name records this ledger has not fetched yet: give its
        reader a few fetches to see them before calling the cursor beyond the end.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + END_WAIT_S
        while True:
            ends = self.ledger.ends
            past = any(offset > ends.get(p, 0) for p, offset in enumerate(cursor.offsets))
            if not past or loop.time() >= deadline:
                return dict(ends)
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ closing

    def _drop(self, sub: Subscriber, code: int, reason: str) -> None:
        """The fan-out's hook: close with the cut after the last frame this client was sent."""
        conn = sub.owner
        if isinstance(conn, StreamConnection):
            if code == protocol.SLOW_CONSUMER:
                self.closed_slow += 1
            buffered = sub.transport.get_write_buffer_size()
            log.info("stream_dropped", conn=conn.number, code=code, reason=reason, buffered=buffered)
            self._close(conn, code, reason)
        elif isinstance(conn, sse.EventStream):
            if code == protocol.SLOW_CONSUMER:
                self.closed_slow += 1
            log.info("sse_dropped", conn=conn.number, code=code, reason=reason)
            self.sse.drop(conn, code, reason)

    def _close(self, conn: StreamConnection, code: int, reason: str) -> None:
        """Close without awaiting: a `closing` message and the close frame join the write buffer.

        `Connection.close()` would wait for the buffer to drain, forever for a client that stopped reading;
        instead the transport is aborted if the client has not completed the close in time.
        """
        if conn.protocol.state is not State.OPEN:
            return
        sub = conn.subscriber
        cursor = sub.cursor if sub is not None and sub.cursor else None
        if sub is not None:
            self.fanout.detach(sub)
        try:
            if cursor is not None and code in _RESUMABLE:
                conn.transport.write(text_frame(protocol.closing(code, reason, cursor)))
            conn.protocol.send_close(code, protocol.close_reason(reason, cursor))
            conn.send_data()
        except Exception:
            conn.transport.abort()
            return
        asyncio.get_running_loop().call_later(self._close_timeout, conn.transport.abort)

    async def _sweep(self) -> None:
        """Keys revoked, expired or removed while connected end their streams within a second.

        `crisis keys revoke` in another process rewrites the keys file: one `stat` per tick notices it.
        Expiry needs no file change, so every tick re-checks each open stream's key record (a dict lookup
        per distinct key, no hashing).
        """
        while True:
            await asyncio.sleep(KEY_CHECK_S)
            server = self._server
            if server is None:
                continue
            try:
                self.keys.refresh()
            except Exception:  # a half-written or broken file: keep the keys we had, say so
                log.exception("keys_reload_failed")
                continue
            now = utcnow()
            verdicts: dict[str, bool] = {}
            for ws in list(server.connections):
                conn = _stream(ws)
                principal = conn.principal
                if principal is None or conn.token is None:
                    continue
                key_id = principal.key_id
                if key_id not in verdicts:
                    verdicts[key_id] = self.keys.still_valid(key_id, now)
                if not verdicts[key_id]:
                    log.info("stream_key_invalid", conn=conn.number, key_id=key_id)
                    self._close(conn, protocol.POLICY_VIOLATION, "the API key was revoked or expired")
            for stream in list(self.sse.streams):
                key_id = stream.principal.key_id
                if key_id not in verdicts:
                    verdicts[key_id] = self.keys.still_valid(key_id, now)
                if not verdicts[key_id]:
                    log.info("stream_key_invalid", conn=stream.number, key_id=key_id)
                    self.sse.drop(stream, protocol.POLICY_VIOLATION, "the API key was revoked or expired")


# Closes after which the client is expected back with its cursor: they carry it.
_RESUMABLE = frozenset({protocol.SLOW_CONSUMER, protocol.GOING_AWAY, protocol.INTERNAL_ERROR})


def _tls(settings: Settings) -> ssl.SSLContext | None:
    """The server context for wss:// when the gateway holds its own certificate (else a proxy does TLS)."""
    if settings.gateway_tls_cert_file is None or settings.gateway_tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.gateway_tls_cert_file, settings.gateway_tls_key_file)
    return context


def _stream(ws: ServerConnection) -> StreamConnection:
    assert isinstance(ws, StreamConnection)
    return ws


def _select_subprotocol(_: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """cloudevents.json when offered; a bot that offers nothing is served all the same."""
    return Subprotocol(protocol.SUBPROTOCOL) if protocol.SUBPROTOCOL in offered else None


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
