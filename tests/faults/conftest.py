"""Fault-test helpers: a broker of the test's own, requests in flight, and the log read by a fresh reader."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from crisis.bus.kafka import KafkaBus
from crisis.config import Settings
from crisis.domain.book import Book
from crisis.keys import KeyStore
from crisis.runtime import Running, api_running, ledger_running


def fault_settings(bootstrap: str, tmp_path: Path, *, idempotence: bool) -> Settings:
    """Short timeouts, so a frozen broker turns into 503s within the test's time budget."""
    return Settings(
        kafka_bootstrap=bootstrap,
        kafka_topic=f"faults-{uuid.uuid4().hex[:8]}",
        kafka_partitions=3,
        kafka_idempotence=idempotence,
        kafka_request_timeout_ms=1000,
        publish_timeout_s=2.0,
        kafka_fetch_wait_ms=10,
        keys_file=tmp_path / "keys.json",
        api_port=0,
    )


class AutoTopicBus(KafkaBus):
    """For librdkafka's mock cluster: its admin API cannot create topics, but a metadata request can."""

    async def ensure_topic(self) -> None:
        return None

    async def __aenter__(self) -> AutoTopicBus:
        await super().__aenter__()
        assert self._producer is not None
        await self._producer.partitions_for(self.topic)  # a metadata request for it creates the topic
        return self


@dataclass
class Call:
    """One write request, replayable with the same Idempotency-Key."""

    path: str
    body: dict[str, Any]
    key: str
    status: int = 0
    answer: Any = None

    def event_ids(self) -> list[str]:
        """The events this request wrote (2xx) or may have written (503)."""
        if self.status in (200, 201):
            if "items" in self.answer:
                return [i["event_id"] for i in self.answer["items"] if i["event_id"]]
            return [self.answer["event_id"]]
        return list(self.answer.get("event_ids", [])) if isinstance(self.answer, dict) else []


async def send(http: httpx.AsyncClient, call: Call) -> Call:
    r = await http.post(call.path, json=call.body, headers={"Idempotency-Key": call.key})
    call.status = r.status_code
    call.answer = r.json()
    return call


async def fire(http: httpx.AsyncClient, calls: list[Call], spacing: float) -> list[Call]:
    """Start the calls `spacing` seconds apart, so some are in flight whenever the fault strikes."""

    async def later(i: int, call: Call) -> Call:
        await asyncio.sleep(i * spacing)
        return await send(http, call)

    return list(await asyncio.gather(*(later(i, c) for i, c in enumerate(calls))))


async def read_log(bus_type: type[KafkaBus], settings: Settings, quiet: float = 1.0) -> Counter[str]:
    """Every event id in the topic, with how many copies, read by a fresh reader until `quiet` s idle."""
    copies: Counter[str] = Counter()
    async with bus_type(settings) as bus, bus.reader() as reader:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < quiet:
            batch = await reader.next_batch(0.1)
            if batch:
                idle_since = time.monotonic()
            copies.update(d.envelope.id for d in batch)
    return copies


async def visible_once(bus_type: type[KafkaBus], settings: Settings, ids: set[str]) -> dict[str, int]:
    """How many copies of each id a reader acts on after folding the log (the fold drops repeats)."""
    book = Book()
    seen: Counter[str] = Counter()
    async with bus_type(settings) as bus, bus.reader() as reader:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 1.0:
            batch = await reader.next_batch(0.1)
            if batch:
                idle_since = time.monotonic()
            for d in batch:
                if book.apply(d.envelope).deliverable:
                    seen[d.envelope.id] += 1
    return {i: seen[i] for i in ids}


@asynccontextmanager
async def api_on(settings: Settings, bus_type: type[KafkaBus] = KafkaBus) -> AsyncIterator[Running]:
    """Bus, ledger and API in this process, like `crisis serve api`, on the bus class given."""
    keys = KeyStore(settings.keys_file)
    async with (
        bus_type(settings) as bus,
        ledger_running(bus, settings) as ledger,
        api_running(settings, ledger, keys) as url,
    ):
        yield Running(settings, bus, ledger, keys, api_url=url)


async def until_ready(http: httpx.AsyncClient, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (await http.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "the API did not become ready again"
        await asyncio.sleep(0.1)
