"""Read your own writes across API processes: a write answers the log position it reached, and a request
that names it is answered only by a process that has folded the log up to there."""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx
import pytest

from crisis import positions
from crisis.client import Client
from crisis.config import Settings
from crisis.domain.enums import Role
from crisis.keys import KeyStore
from tests.api.conftest import api_processes

pytestmark = pytest.mark.kafka

ACTIVATED = {"title": "t", "status": "activated", "level": 1, "criteria": ["viral_spread"]}


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    result: Settings = make_settings(read_after_timeout_s=1.0)
    return result


class RoundRobin(httpx.BaseTransport):
    """A load balancer in front of several API processes: each request goes to the next one."""

    def __init__(self, urls: list[str]) -> None:
        self._next = itertools.cycle([httpx.URL(u) for u in urls])
        self._http = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        to = next(self._next)
        request.url = request.url.copy_with(host=to.host, port=to.port)
        return self._http.handle_request(request)


def test_a_read_sent_with_the_write_s_position_finds_the_write_on_another_process(settings: Settings) -> None:
    _, key = KeyStore(settings.keys_file).add("hub", Role.COORDINATOR)
    auth = {"Authorization": f"Bearer {key}"}
    with api_processes(settings, 2) as [one, other]:
        for n in range(15):
            made = httpx.post(f"{one.url}/v1/crises", json=ACTIVATED, headers=auth)
            assert made.status_code == 201
            token = made.headers[positions.WRITTEN_HEADER]
            assert positions.parse(token)
            shared = httpx.post(
                f"{other.url}/v1/crises/{made.json()['id']}/indicators",
                json={"indicators": [{"kind": "md5", "value": f"{n:032x}"}]},
                headers={**auth, positions.AFTER_HEADER: token},
            )
            assert shared.status_code == 200, shared.text
            indicator = shared.json()["items"][0]["indicator_id"]
            read = httpx.get(
                f"{one.url}/v1/crises/{made.json()['id']}/indicators",
                headers={**auth, positions.AFTER_HEADER: shared.headers[positions.WRITTEN_HEADER]},
            )
            assert read.status_code == 200, read.text
            assert [i["indicator_id"] for i in read.json()["items"]] == [indicator]


def test_the_client_carries_its_writes_position_through_a_load_balancer(settings: Settings) -> None:
    _, key = KeyStore(settings.keys_file).add("hub", Role.COORDINATOR)
    with api_processes(settings, 2) as processes:
        balanced = RoundRobin([p.url for p in processes])
        with Client(processes[0].url, key, transport=balanced) as client:
            for n in range(10):
                crisis = client.post("/v1/crises", ACTIVATED)
                answer = client.post(
                    f"/v1/crises/{crisis['id']}/indicators",
                    {"indicators": [{"kind": "md5", "value": f"{n:032x}"}]},
                )
                indicator = answer["items"][0]["indicator_id"]
                found = client.get(f"/v1/crises/{crisis['id']}/indicators")["items"]
                assert [i["indicator_id"] for i in found] == [indicator]
            assert client.position is not None and positions.parse(client.position)


def test_a_position_never_reached_is_a_503_and_a_malformed_one_a_422(settings: Settings) -> None:
    _, key = KeyStore(settings.keys_file).add("hub", Role.COORDINATOR)
    auth = {"Authorization": f"Bearer {key}"}
    with api_processes(settings, 1) as [api]:
        start = time.monotonic()
        ahead = httpx.get(f"{api.url}/v1/crises", headers={**auth, positions.AFTER_HEADER: "0:999999999"})
        assert ahead.status_code == 503 and ahead.json()["code"] == "not_folded_yet"
        assert ahead.headers["Retry-After"] == "1" and time.monotonic() - start >= 1.0
        bad = httpx.get(f"{api.url}/v1/crises", headers={**auth, positions.AFTER_HEADER: "zero:1"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == f"header.{positions.AFTER_HEADER}"
        # Reads write nothing: no position is answered; an anonymous request's header is ignored.
        assert positions.WRITTEN_HEADER not in httpx.get(f"{api.url}/v1/crises", headers=auth).headers
        assert httpx.get(f"{api.url}/readyz", headers={positions.AFTER_HEADER: "zero:1"}).status_code == 200
