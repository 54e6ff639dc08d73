"""The calls the runner makes on the HTTP API, with the API's problem details kept for the controller."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from crisis.domain.report import Report

Json = dict[str, Any]


class ApiError(Exception):
    """A refused or failed call; the message carries the API's own `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}" if status else detail)
        self.status = status
        self.detail = detail


class Api:
    """One HTTP client for the whole run; each call names the key it acts with."""

    def __init__(self, base_url: str, *, timeout: float = 15.0, retries: int = 3) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self._retries = retries

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self, method: str, path: str, key: str, *, json: Json | None = None, idem: str = ""
    ) -> Json:
        """One call; a 503 is retried with the same Idempotency-Key, so a retry never doubles an event."""
        headers = {"Authorization": f"Bearer {key}"}
        if idem:
            headers["Idempotency-Key"] = idem
        for attempt in range(self._retries + 1):
            try:
                r = await self._http.request(method, path, json=json, headers=headers)
            except httpx.TransportError as exc:
                if attempt == self._retries or not idem:
                    raise ApiError(0, f"cannot reach the API at {self.base_url}: {exc!r}") from exc
            else:
                if r.status_code != 503 or attempt == self._retries:
                    return _checked(r)
            await asyncio.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    async def who_am_i(self, key: str) -> None:
        """Raises ApiError unless the key authenticates (a cheap read of exercise crises)."""
        await self.call("GET", "/v1/crises?mode=exercise&status=closed", key)

    async def open(self, key: str, body: Json, idem: str) -> Json:
        return await self.call("POST", "/v1/crises", key, json=body, idem=idem)

    async def crisis(self, key: str, crisis_id: str) -> Json:
        return await self.call("GET", f"/v1/crises/{crisis_id}", key)

    async def transition(self, key: str, crisis_id: str, body: Json, idem: str) -> Json:
        return await self.call("POST", f"/v1/crises/{crisis_id}/transitions", key, json=body, idem=idem)

    async def share(self, key: str, crisis_id: str, body: Json, idem: str) -> Json:
        return await self.call("POST", f"/v1/crises/{crisis_id}/indicators", key, json=body, idem=idem)

    async def act(self, key: str, crisis_id: str, body: Json, idem: str) -> Json:
        return await self.call("POST", f"/v1/crises/{crisis_id}/actions", key, json=body, idem=idem)

    async def report(self, key: str, crisis_id: str) -> Report:
        return Report.model_validate(await self.call("GET", f"/v1/crises/{crisis_id}/report", key))


def _checked(r: httpx.Response) -> Json:
    if r.is_success:
        body = r.json()
        return body if isinstance(body, dict) else {"items": body}
    try:
        problem = r.json()
        detail = str(problem.get("detail") or problem)
        errors = problem.get("errors")
        if errors:
            detail += ": " + "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors[:5])
    except ValueError:
        detail = r.text[:300]
    raise ApiError(r.status_code, detail)
