"""HTTP/1.1 connections with deadlines: a request's head, then its body, must each arrive in time.

uvicorn times only the idle gap between two requests (`timeout_keep_alive`). A client that connects and
sends nothing, or drips the bytes of its request head or body (slowloris), would otherwise hold its
connection for as long as it likes, and a few thousand such clients hold the server. Here each request has
two deadlines, counted from when it could start:

- the head (request line and headers), from the connection's opening or the first byte of a later request;
- the body, from the end of the head (a body the app left unread, after a 413 say, is drained within it too).

A request that misses one is answered `408` (problem+json, `Connection: close`) when it had started and its
response had not, and the connection is closed; the app sees the client disconnect. Nothing here waits on
the client, so other connections never notice.

    uvicorn.Config(app, http=deadlines(head_s=10, body_s=10), ...)

Built on uvicorn's h11 protocol (the one it picks when httptools is not installed), pinned here so the
deadlines always apply.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

import h11
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

from crisis.api.problems import problem_response

log = structlog.get_logger(__name__)

Phase = Literal["head", "body"]


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, with one timer per connection for the part of a request being received."""

    head_timeout_s: ClassVar[float] = 10.0
    body_timeout_s: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._phase: Phase | None = None
        self._upgraded = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("head")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # The first byte of a request after an idle keep-alive gap starts its head's clock (uvicorn's
        # keep-alive timer, which covered the gap, is cancelled by this same call).
        if self._phase is None and self.conn.their_state is h11.IDLE:
            self._arm("head")
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()  # a pipelined request may have been read just now

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._upgraded = True
        self._disarm()
        super().handle_websocket_upgrade(event)

    def _follow(self) -> None:
        """Move the timer to what h11 now waits for from the client."""
        if self._upgraded or self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body")
        elif state is h11.IDLE:
            if self._phase == "body" or (self._phase is None and self.conn.trailing_data[0]):
                # A body drained after its response (no keep-alive timer runs then), or part of a pipelined
                # request already in: the next request's head gets its deadline from here.
                self._arm("head")
        else:  # the request is in; the app has it (or the connection is done)
            self._disarm()

    def _arm(self, phase: Phase) -> None:
        self._disarm()
        timeout = self.head_timeout_s if phase == "head" else self.body_timeout_s
        self._phase = phase
        self._timer = self.loop.call_later(timeout, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._phase = None, None

    def _expire(self) -> None:
        phase, self._timer, self._phase = self._phase, None, None
        if self.transport.is_closing():
            return
        cycle = self.cycle if self.cycle is not None and not self.cycle.response_complete else None
        if phase == "head":  # a request that had begun; a connection that sent nothing is just closed
            answer = bool(self.conn.trailing_data[0])
        else:  # unless the app already answered (a 413 whose body was being drained, say)
            answer = cycle is not None and not cycle.response_started
        log.info("http_request_too_slow", phase=phase, client=self.client, answered=answer)
        if cycle is not None:
            # The app is waiting for the body: it reads a disconnect, and whatever it answers goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        if answer:
            timeout = self.head_timeout_s if phase == "head" else self.body_timeout_s
            detail = f"the request {phase} did not arrive within {timeout:g} s"
            self.transport.write(_timeout_response(detail))
        if self.transport.get_write_buffer_size():
            self.transport.abort()  # a client that is not reading either gets no grace
        else:
            self.transport.close()


def _timeout_response(detail: str) -> bytes:
    body = bytes(problem_response(408, detail, code="too_slow").body)
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


def deadlines(*, head_s: float, body_s: float) -> type[DeadlineProtocol]:
    """The protocol class to give uvicorn's `Config(http=...)`, with these deadlines."""

    class Configured(DeadlineProtocol):
        head_timeout_s = head_s
        body_timeout_s = body_s

    return Configured
