"""The calls the runner makes on the HTTP API, through the one client and its one retry policy."""

from __future__ import annotations

from typing import Any

from crisis.client.http import ApiError, AsyncClient
from crisis.domain.report import Report, assemble

Json = dict[str, Any]

__all__ = ["Api", "ApiError", "Json"]


class Api:
    """One HTTP client for the whole run; each call names the key it acts with."""

    def __init__(self, base_url: str | None = None, *, timeout: float = 15.0) -> None:
        self._client = AsyncClient(base_url, timeout=timeout)
        self.base_url = self._client.url

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self, method: str, path: str, key: str, *, json: Json | None = None, idem: str = ""
    ) -> Json:
        """One call; a write carries the step's Idempotency-Key, so a retry never doubles an event."""
        response = await self._client.request(method, path, json=json, key=key, idempotency_key=idem)
        body = response.json()
        return body if isinstance(body, dict) else {"items": body}

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
        """The whole report, read as the summary and its NDJSON lines (the paged reads any client uses)."""
        path = f"/v1/crises/{crisis_id}/report"
        summary = await self.call("GET", f"{path}?view=summary", key)
        lines = [line async for line in self._client.lines(f"{path}/lines", key=key)]
        summary.pop("indicators_total", None)
        summary.pop("lines", None)
        return assemble(Report.model_validate(summary), lines)
