"""`crisis up` as a newcomer runs it: a real process, the embedded broker, real sockets."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
import pytest
import websockets

from crisis.broker import free_port
from tests.support.processes import CrisisUp, tansu_pids, wait_gone

pytestmark = pytest.mark.kafka


@pytest.fixture
def up(tmp_path: Path) -> CrisisUp:
    return CrisisUp(tmp_path, free_port(), free_port())


def _ports(up: CrisisUp) -> tuple[int, int]:
    args = up.proc.args
    assert isinstance(args, list)
    return int(args[args.index("--api-port") + 1]), int(args[args.index("--gateway-port") + 1])


async def test_declare_over_http_then_receive_on_the_stream(up: CrisisUp, tmp_path: Path) -> None:
    try:
        banner = up.read_banner()
        api_port, gw_port = _ports(up)
        assert f"http://127.0.0.1:{api_port}" in banner
        assert f"ws://127.0.0.1:{gw_port}/v1/stream" in banner
        key = up.key
        assert (tmp_path / ".crisis" / "keys.json").exists()
        assert key not in (tmp_path / ".crisis" / "keys.json").read_text()  # only its hash is stored
        headers = {"Authorization": f"Bearer {key}"}
        async with websockets.connect(
            f"ws://127.0.0.1:{gw_port}/v1/stream", additional_headers=headers, open_timeout=10
        ) as ws:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as http:
                r = await http.post(
                    "/v1/crises",
                    headers=headers,
                    json={
                        "title": "Attack stream",
                        "status": "activated",
                        "level": 1,
                        "criteria": ["viral_spread"],
                    },
                )
                assert r.status_code == 201, r.text
                crisis_id = r.json()["id"]
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame.get("specversion"):
                    break
        assert frame["type"] == "crisis.activated"
        assert frame["subject"] == crisis_id
        assert frame["mode"] == "live"
        assert frame["id"] == r.json()["event_id"]
        assert frame["cursor"]
    finally:
        up.stop()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_no_broker_is_left_behind(up: CrisisUp, sig: signal.Signals) -> None:
    up.read_banner()
    pids = tansu_pids(up.kafka_port)
    assert len(pids) == 1
    up.stop(sig)
    assert wait_gone(pids) == []
