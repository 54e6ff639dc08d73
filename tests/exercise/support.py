"""A small fast scenario and a stream reader for the exercise tests."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import websockets

# 30 minutes of exercise time; at x600 it plays in 3 s. Delays are fixed so the report can be checked.
FAST = """\
name: test drill
seed: 5
generate_keys: true
participants:
  - {org: hub, role: coordinator}
  - {org: bka, role: authority}
  - org: quick
    role: provider
    simulate: {receipt: 60, action_delay: 120, outcomes: {removed: 1}}
  - org: steady
    role: provider
    simulate:
      receipt: {distribution: fixed, median_s: 300}
      action_delay: {distribution: fixed, median_s: 600}
      outcomes: {blocked: 1}
expect: {receipt_within: "00:02:00", action_within: "00:10:00"}
timeline:
  - at: 0
    open: {title: Drill, status: activated, level: 2, criteria: [ongoing_violent_event]}
  - at: 60
    share:
      by: bka
      indicators:
        - {kind: sha256, value: "9f2b5c1e0d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"}
        - {kind: url, value: "https://video.example/watch?v=1"}
      generate: {kind: pdq, count: 2}
  - at: 120
    change_level: {level: 3}
  - at: 1500
    conclude: {reason: over}
  - at: 1800
    close: {}
"""
SPEED = 600.0


def write(tmp_path: Path, text: str = FAST, name: str = "drill.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


class Tap:
    """Every CloudEvent a subscriber receives, collected in the background."""

    def __init__(self, url: str, key: str, mode: str) -> None:
        self.url = f"{url}?mode={mode}"
        self.key = key
        self.events: list[dict[str, Any]] = []
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Tap:
        self.task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.ready.wait(), 10)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        async with websockets.connect(self.url, additional_headers=headers) as ws:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "subscribed":
                    self.ready.set()
                elif "specversion" in message:
                    self.events.append(message)

    async def wait_for(self, type_: str, subject: str, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not any(e["type"] == type_ and e["subject"] == subject for e in self.events):
                await asyncio.sleep(0.02)
