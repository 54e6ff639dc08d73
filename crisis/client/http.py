"""The HTTP API client, sync and async: bearer key, problem+json errors, the one retry policy.

    with Client(key=key) as api:                       # CRISIS_API_URL, or http://127.0.0.1:8000
        crisis = api.post("/v1/crises", {"title": "Attack", ...})

A write carries an Idempotency-Key (one per call, the same on every attempt), so a retried write never
makes a second event. 429 and 503 are retried after the server's Retry-After, with jitter; connection
errors with exponential backoff. What is left after the last attempt is an `ApiError` with one readable
message.
"""

from __future__ import annotations

import json as jsonlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Any, Self

import httpx
import stamina

from crisis import positions
from crisis.client.retry import (
    DEFAULT_POLICY,
    RETRIED_STATUSES,
    SAFE_METHODS,
    Policy,
    RetryableResponse,
    backoff_hook,
    may_retry,
)
from crisis.endpoints import API_URL_ENV, api_url
from crisis.terminal import printable

NDJSON = "application/x-ndjson"


class ApiError(Exception):
    """The API refused or failed the call (`status` 0: it could not be reached)."""

    def __init__(self, status: int, message: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem or {}

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or self)


class Unreachable(ApiError):
    """No answer at all: nothing listens there, or the network is down."""


def problem_text(response: httpx.Response) -> str:
    """The problem+json body as one printable message, with per-field errors."""
    try:
        body = response.json()
    except ValueError:
        return printable(f"HTTP {response.status_code}: {response.text[:300]}")
    if not isinstance(body, dict):
        return printable(f"HTTP {response.status_code}: {str(body)[:300]}")
    text = f"{body.get('title', 'Error')} ({response.status_code}): {body.get('detail', '')}"
    for error in (body.get("errors") or [])[:10]:
        if isinstance(error, dict):
            text += f"\n  {error.get('field') or '(body)'}: {error.get('message')}"
    if response.status_code in RETRIED_STATUSES and "Retry-After" in response.headers:
        text += f"\n  the server asks to retry after {response.headers['Retry-After']} s"
    return printable(text, keep="\n")


def _unreachable(base: str, exc: httpx.TransportError) -> Unreachable:
    why = printable(str(exc) or type(exc).__name__)
    return Unreachable(
        0, f"cannot reach the API at {base} ({why}): is it running (crisis up)? or set {API_URL_ENV} / --api"
    )


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = None
        raise ApiError(
            response.status_code, problem_text(response), problem if isinstance(problem, dict) else None
        )
    return response


class _Base:
    def __init__(self, url: str | None, key: str, policy: Policy) -> None:
        self.url = api_url(url)
        self.key = key
        self.policy = policy
        # The log position this client's writes reached (crisis.positions): sent with every later request,
        # so that whichever API process behind a load balancer answers it has folded those writes first.
        self.position: str | None = None

    def _noted(self, response: httpx.Response) -> httpx.Response:
        written = response.headers.get(positions.WRITTEN_HEADER)
        if written:
            self.position = positions.merged(self.position, written)
        return response

    def _headers(
        self, method: str, key: str | None, idempotency_key: str | None, accept: str | None
    ) -> dict[str, str]:
        headers: dict[str, str] = {}
        if key or self.key:
            headers["Authorization"] = f"Bearer {key or self.key}"
        if method.upper() not in SAFE_METHODS:
            # None: a fresh key for this call; "": the caller wants none (and gets no retry).
            idem = uuid.uuid4().hex if idempotency_key is None else idempotency_key
            if idem:
                headers["Idempotency-Key"] = idem
        if accept:
            headers["Accept"] = accept
        if self.position:
            headers[positions.AFTER_HEADER] = self.position
        return headers

    def _hook(self, request: httpx.Request) -> Callable[[Exception], bool | float]:
        if may_retry(request.method, request.headers):
            return backoff_hook(self.policy)
        return lambda exc: False

    def _retrying(self) -> stamina.RetryingCaller:
        p = self.policy
        return stamina.RetryingCaller(
            attempts=p.attempts,
            timeout=p.timeout_s,
            wait_initial=p.wait_initial_s,
            wait_max=p.wait_max_s,
            wait_jitter=p.wait_jitter_s,
        )

    def _async_retrying(self) -> stamina.AsyncRetryingCaller:
        p = self.policy
        return stamina.AsyncRetryingCaller(
            attempts=p.attempts,
            timeout=p.timeout_s,
            wait_initial=p.wait_initial_s,
            wait_max=p.wait_max_s,
            wait_jitter=p.wait_jitter_s,
        )


def _raise_retryable(response: httpx.Response, retryable: bool) -> httpx.Response:
    if retryable and response.status_code in RETRIED_STATUSES:
        raise RetryableResponse(response)
    return response


class Client(_Base):
    """Blocking client, for the CLI and scripts."""

    def __init__(
        self,
        url: str | None = None,
        key: str = "",
        *,
        timeout: float = 30.0,
        policy: Policy = DEFAULT_POLICY,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, key, policy)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        key: str | None = None,
        idempotency_key: str | None = None,
        accept: str | None = None,
    ) -> httpx.Response:
        """One call, retried by the policy; raises ApiError for a refusal or when nothing answers."""
        headers = self._headers(method, key, idempotency_key, accept)
        request = self._http.build_request(method, path, json=json, headers=headers)
        retryable = may_retry(request.method, request.headers)

        def send() -> httpx.Response:
            return _raise_retryable(self._http.send(request), retryable)

        try:
            response = self._retrying().on(self._hook(request))(send)
        except RetryableResponse as exc:
            response = exc.response
        except httpx.TransportError as exc:
            raise _unreachable(self.url, exc) from None
        return _checked(self._noted(response))

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, json: Any, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs).json()

    def pages(self, path: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paged list, following `next`: one page in memory at a time."""
        url: str | None = path
        while url:
            page = self.get(url, **kwargs)
            yield from page["items"]
            url = page.get("next")

    def lines(self, path: str, *, key: str | None = None) -> Iterator[dict[str, Any]]:
        """An NDJSON answer one object at a time, never whole in memory (a stream: not retried)."""
        headers = self._headers("GET", key, None, NDJSON)
        try:
            with self._http.stream("GET", path, headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    _checked(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield jsonlib.loads(line)
        except httpx.TransportError as exc:
            raise _unreachable(self.url, exc) from None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient(_Base):
    """Asynchronous client, for the exercise runner and bots."""

    def __init__(
        self,
        url: str | None = None,
        key: str = "",
        *,
        timeout: float = 30.0,
        policy: Policy = DEFAULT_POLICY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, key, policy)
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        key: str | None = None,
        idempotency_key: str | None = None,
        accept: str | None = None,
    ) -> httpx.Response:
        """One call, retried by the policy; raises ApiError for a refusal or when nothing answers."""
        headers = self._headers(method, key, idempotency_key, accept)
        request = self._http.build_request(method, path, json=json, headers=headers)
        retryable = may_retry(request.method, request.headers)

        async def send() -> httpx.Response:
            return _raise_retryable(await self._http.send(request), retryable)

        try:
            response = await self._async_retrying().on(self._hook(request))(send)
        except RetryableResponse as exc:
            response = exc.response
        except httpx.TransportError as exc:
            raise _unreachable(self.url, exc) from None
        return _checked(self._noted(response))

    async def get(self, path: str, **kwargs: Any) -> Any:
        return (await self.request("GET", path, **kwargs)).json()

    async def post(self, path: str, json: Any, **kwargs: Any) -> Any:
        return (await self.request("POST", path, json=json, **kwargs)).json()

    async def pages(self, path: str, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paged list, following `next`: one page in memory at a time."""
        url: str | None = path
        while url:
            page = await self.get(url, **kwargs)
            for item in page["items"]:
                yield item
            url = page.get("next")

    async def lines(self, path: str, *, key: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """An NDJSON answer one object at a time, never whole in memory (a stream: not retried)."""
        headers = self._headers("GET", key, None, NDJSON)
        try:
            async with self._http.stream("GET", path, headers=headers) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _checked(response)
                async for line in response.aiter_lines():
                    if line.strip():
                        yield jsonlib.loads(line)
        except httpx.TransportError as exc:
            raise _unreachable(self.url, exc) from None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
