"""Actors for API tests: one key per role, each in its own organisation, and a client on real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest_asyncio

from tests.conftest import Stack

ORGS = {"coordinator": "hub", "authority": "bka", "provider": "vidshare", "observer": "press"}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Actors:
    stack: Stack
    http: httpx.AsyncClient
    keys: dict[str, str] = field(default_factory=dict)

    def key(self, role: str, org: str | None = None, **kwargs: Any) -> str:
        """A key for `role` (in the role's usual org unless `org` is given), made once and reused."""
        name = f"{role}:{org or ORGS[role]}:{sorted(kwargs.items())}"
        if name not in self.keys:
            self.keys[name] = self.stack.add_key(org or ORGS[role], role, **kwargs)
        return self.keys[name]

    async def call(self, method: str, path: str, role: str, org: str | None = None, **kw: Any) -> httpx.Response:
        headers = {**auth(self.key(role, org)), **kw.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kw)

    async def crisis(self, **body: Any) -> dict[str, Any]:
        """A crisis opened by the coordinator (activated at level 1 unless told otherwise)."""
        payload = {"title": "Live-streamed attack", "status": "activated", "level": 1, **body}
        r = await self.call("POST", "/v1/crises", "coordinator", json=payload)
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result

    async def share(
        self, crisis_id: str, items: list[Any], role: str = "authority", org: str | None = None, **extra: Any
    ) -> httpx.Response:
        body = {"indicators": items, **extra}
        return await self.call("POST", f"/v1/crises/{crisis_id}/indicators", role, org, json=body)

    async def shared_id(self, crisis_id: str, item: dict[str, Any], role: str = "authority", **kw: Any) -> str:
        r = await self.share(crisis_id, [item], role, **kw)
        assert r.status_code == 200, r.text
        [result] = r.json()["items"]
        assert result["status"] in ("created", "sighting"), result
        indicator_id: str = result["indicator_id"]
        return indicator_id


@pytest_asyncio.fixture
async def actors(api_stack: Stack) -> AsyncIterator[Actors]:
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as http:
        yield Actors(api_stack, http)
