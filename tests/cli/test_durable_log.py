"""`crisis up` keeps its log on disk: a kill -9 loses no acknowledged write, and saved cursors resume exactly.

A real `crisis up` process (embedded broker, API, gateway), real sockets, a real SIGKILL in the middle of a
stream of writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from crisis.broker import free_port
from tests.support.processes import CrisisUp

pytestmark = pytest.mark.kafka


def start(workdir: Path) -> tuple[CrisisUp, str, str]:
    api, gw = free_port(), free_port()
    up = CrisisUp(workdir, api, gw)
    up.read_banner()
    return up, f"http://127.0.0.1:{api}", f"ws://127.0.0.1:{gw}/v1/stream"


def restored(up: CrisisUp) -> int:
    line = next(line for line in up.banner if line.strip().startswith("log "))
    return int(line.split("(")[1].split()[0])


async def read_events(
    url: str, key: str, *, cursor: str | None, until: int, timeout: float
) -> list[dict[str, Any]]:
    """indicator.shared events and gap messages, until `until` events or `timeout` s of quiet."""
    query = "?type=indicator.shared" + (f"&cursor={cursor}" if cursor else "")
    got: list[dict[str, Any]] = []
    async with websockets.connect(
        url + query, additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=10
    ) as ws:
        with contextlib.suppress(TimeoutError):
            while sum(1 for m in got if m.get("specversion")) < until:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                if message.get("specversion") or message["type"] == "gap":
                    got.append(message)
    return got


async def share_until_killed(
    http: httpx.AsyncClient, headers: dict[str, str], crisis_id: str, acknowledged: list[str]
) -> None:
    """Batches of 5 sha256 indicators, one after another; records the ids of every batch answered 200."""
    n = 0
    while True:
        batch = [{"kind": "sha256", "value": hashlib.sha256(b"%d" % (n + i)).hexdigest()} for i in range(5)]
        n += 5
        try:
            r = await http.post(
                f"/v1/crises/{crisis_id}/indicators", headers=headers, json={"indicators": batch}
            )
        except httpx.HTTPError:
            return  # the process is gone: this batch was never acknowledged
        if r.status_code == 200:
            acknowledged += [item["indicator_id"] for item in r.json()["items"]]


async def test_kill_9_loses_no_acknowledged_write_and_cursors_resume_exactly(tmp_path: Path) -> None:
    up, api, ws = start(tmp_path)
    key = up.key
    headers = {"Authorization": f"Bearer {key}"}
    acknowledged: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=api, timeout=10) as http:
            r = await http.post(
                "/v1/crises", headers=headers, json={"title": "Durable", "status": "monitoring"}
            )
            assert r.status_code == 201, r.text
            crisis_id = r.json()["id"]
            writer = asyncio.create_task(share_until_killed(http, headers, crisis_id, acknowledged))
            while len(acknowledged) < 100:
                await asyncio.sleep(0.05)
            # A subscriber reads part of the log and keeps the cursor of the last event it saw.
            before = await read_events(ws, key, cursor=None, until=60, timeout=5)
            while len(acknowledged) < 200:
                await asyncio.sleep(0.05)
            up.stop(signal.SIGKILL)
            await asyncio.wait_for(writer, 30)
    finally:
        up.stop()
    seen = [m["data"]["indicator_id"] for m in before]
    cursor = before[-1]["cursor"]
    assert len(seen) == 60

    up, api, ws = start(tmp_path)
    try:
        assert restored(up) >= len(acknowledged) + 1  # the crisis and every acknowledged share
        async with httpx.AsyncClient(base_url=api, timeout=10) as http:
            r = await http.get(
                f"/v1/crises/{crisis_id}/indicators", headers=headers, params={"limit": 10_000}
            )
            assert r.status_code == 200, r.text
            in_log = [item["indicator_id"] for item in r.json()["items"]]
        assert set(acknowledged) <= set(in_log), f"{len(set(acknowledged) - set(in_log))} acknowledged lost"
        # Without a cursor the stream starts live, so what the subscriber saw is a run of the log.
        first = in_log.index(seen[0])
        assert in_log[first : first + len(seen)] == seen
        rest = in_log[first + len(seen) :]
        after = await read_events(ws, key, cursor=cursor, until=len(rest), timeout=5)
    finally:
        up.stop()
    ids = [m["data"]["indicator_id"] for m in after if m.get("specversion")]
    assert not [m for m in after if m.get("type") == "gap"]
    assert len(ids) == len(set(ids)), "duplicated after resume"
    assert ids == rest, "lost or reordered after resume"

    # A wiped log is another log: the old cursor is told so, never silently skipped past.
    shutil.rmtree(tmp_path / ".crisis" / "log")
    up, api, ws = start(tmp_path)
    try:
        assert restored(up) == 0
        messages = await read_events(ws, key, cursor=cursor, until=1, timeout=3)
    finally:
        up.stop()
    assert messages and messages[0]["type"] == "gap"
    assert messages[0]["reason"] == "foreign_cursor"
