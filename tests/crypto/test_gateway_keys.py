"""A gateway-only process never writes the key store (its Kafka principal may only read): after an erasure
made through an API process it forgets the key and serves the erased marker; destroying is the API's."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import httpx
import pytest

from crisis.bus.base import PublishError
from crisis.crypto.keyring import Covers, Keyring
from crisis.crypto.sealed import SealedBus
from crisis.domain.enums import Role
from crisis.runtime import stack
from tests.crypto.test_shredding import URL, call, declare_and_share, stream_backfill, wait_for

pytestmark = pytest.mark.kafka


class ReadOnlyKeyring:
    """The key store as the gateway's principal sees it: readable; any write refused and recorded."""

    def __init__(self, inner: Keyring) -> None:
        self.inner = inner
        self.writes: list[str] = []

    def get(self, kid: str) -> bytes | None:
        return self.inner.get(kid)

    async def refresh(self) -> None:
        await self.inner.refresh()

    def forget(self, covers: Covers) -> list[str]:
        return self.inner.forget(covers)

    async def create(self, kids: Collection[str]) -> None:
        self.writes.append(f"create {sorted(kids)}")
        raise PublishError("TopicAuthorizationFailed: the gateway may not write the keys topic", [])

    async def destroy(self, covers: Covers, known: Collection[str] = ()) -> None:
        self.writes.append(f"destroy {sorted(known)}")
        raise PublishError("TopicAuthorizationFailed: the gateway may not write the keys topic", [])


async def test_a_gateway_only_process_forgets_erased_keys_and_never_destroys_them(make_settings: Any) -> None:
    settings = make_settings()
    async with stack(settings, gateway=False) as api, stack(settings, api=False) as gw:
        assert isinstance(gw.bus, SealedBus)
        keyring = ReadOnlyKeyring(gw.bus.keyring)
        gw.bus.keyring = keyring
        _, hub = api.keys.add("hub", Role.COORDINATOR)
        _, provider = api.keys.add("vidshare", Role.PROVIDER)
        keys = {"hub": hub, "vidshare": provider}
        async with httpx.AsyncClient(base_url=api.api_url, timeout=10) as http:
            cid, url_id, _ = await declare_and_share(http, keys)
            before = await stream_backfill(gw.ws_url, hub, cid, events=4)
            assert URL in json.dumps(before)  # the gateway read the key the API made

            path = f"/v1/crises/{cid}/erasures"
            await call(http, hub, "POST", path, json={"indicator_id": url_id, "reason": "personal data"})
            listed = await call(http, hub, "GET", f"/v1/crises/{cid}/indicators")
            assert [i["value"] for i in listed["items"] if i["indicator_id"] == url_id] == [None]

        async def folded_by_gateway() -> bool:
            return any(e["type"] == "indicator.erased" for e in await stream_backfill(gw.ws_url, hub, cid, 5))

        await wait_for(folded_by_gateway)
        events = await stream_backfill(gw.ws_url, hub, cid, events=5)
        shared = [
            e for e in events if e["type"] == "indicator.shared" and e["data"]["indicator_id"] == url_id
        ]
        assert [e["data"].get("erased") for e in shared] == [True]
        # A client resuming from before the erasure gets the erased event, not the frame it saw then.
        resumed = await stream_backfill(gw.ws_url, hub, cid, events=4, cursor=before[0]["cursor"])
        assert URL not in json.dumps(resumed) and URL not in json.dumps(events)
        assert keyring.writes == []
        assert keyring.get(f"{cid}/{url_id}") is None
