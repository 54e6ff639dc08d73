"""Read your own writes across API processes: the `Crisis-Position` of every write, honoured as
`Crisis-After` on any later request (crisis.positions has the token; docs/api.md the behaviour).

Pure ASGI around the app: the positions a request's writes reach are recorded in its context
(crisis.ledger.recording_writes) and answered as a header when its response starts; a request that names
positions waits, at most `read_after_timeout_s`, until this process has folded the log up to them.
Only requests that carry credentials wait: an anonymous request's header is ignored.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crisis import positions
from crisis.api.problems import problem_response
from crisis.ledger import Ledger, recording_writes


class ReadYourWrites:
    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        after = headers.get(positions.AFTER_HEADER)
        if after is not None and "authorization" in headers:
            try:
                wanted = positions.parse(after)
            except positions.BadToken as exc:
                field = f"header.{positions.AFTER_HEADER}"
                response = problem_response(
                    422,
                    f"{positions.AFTER_HEADER} is not a position this API gave: {exc}",
                    code="invalid",
                    errors=[{"field": field, "message": str(exc)}],
                )
                await response(scope, receive, send)
                return
            ledger: Ledger = scope["app"].state.ledger
            if not await ledger.until_folded(wanted, self.timeout_s):
                response = problem_response(
                    503,
                    f"this API process has not read the log up to {positions.AFTER_HEADER} yet (another "
                    "process took the write); try again",
                    code="not_folded_yet",
                    headers={"Retry-After": "1"},
                )
                await response(scope, receive, send)
                return
        with recording_writes() as written:

            async def answer(message: Message) -> None:
                if message["type"] == "http.response.start" and written:
                    value = positions.token(written).encode()
                    message["headers"] = [*message.get("headers", ()), (b"crisis-position", value)]
                await send(message)

            await self.app(scope, receive, answer)
