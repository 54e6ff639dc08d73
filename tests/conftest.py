"""Shared fixtures: one real Kafka-protocol broker per session, a fresh topic per test, real sockets.

The broker is, in order of preference: the one `CRISIS_KAFKA_BOOTSTRAP` names; Apache Kafka through
testcontainers where a Docker engine answers; the embedded broker (Tansu) otherwise. A broker that cannot
be started fails the run: Kafka tests never skip.

Stacks run on Kafka unless a test is marked `every_adapter`: then its one body runs twice, on the memory bus
and on Kafka (only the Kafka run carries the `kafka` mark, so `-m "not kafka"` keeps the memory run).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from crisis.config import Settings
from crisis.domain.enums import Role
from crisis.runtime import Running, stack


@dataclass(frozen=True)
class KafkaTarget:
    bootstrap: str
    kind: str  # "external", "apache" or "embedded"

    @property
    def idempotence(self) -> bool:
        # The embedded broker cannot run the idempotent producer; Apache Kafka always does.
        return self.kind != "embedded"


def _docker_works() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kafka() -> AsyncIterator[KafkaTarget]:
    external = os.environ.get("CRISIS_KAFKA_BOOTSTRAP")
    if external:
        yield KafkaTarget(external, "external")
        return
    if os.environ.get("CRISIS_TEST_DOCKER", "1") == "1" and _docker_works():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield KafkaTarget(container.get_bootstrap_server(), "apache")
        return
    from crisis.broker import EmbeddedBroker

    async with EmbeddedBroker() as broker:
        yield KafkaTarget(broker.bootstrap, "embedded")


ADAPTERS = [pytest.param("memory", id="memory"), pytest.param("kafka", id="kafka", marks=pytest.mark.kafka)]
# One test body on every bus adapter (faststream's pattern): mark a test or a module with it.
every_adapter = pytest.mark.parametrize("adapter", ADAPTERS, indirect=True)


@pytest.fixture
def adapter(request: pytest.FixtureRequest) -> str:
    """The bus adapter a test's settings name: "kafka", or each of ADAPTERS under `every_adapter`."""
    name: str = getattr(request, "param", "kafka")
    return name


@pytest.fixture
def make_settings(adapter: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Settings for a test: a fresh topic, a keys file of its own, free ports, the test's bus adapter."""
    if adapter == "memory":
        bus: dict[str, Any] = {"bus_url": "memory://"}
    else:
        # Requested only here, so that a memory-only run never starts a broker.
        kafka: KafkaTarget = request.getfixturevalue("kafka")
        # bus_url stays empty: Kafka is reached through CRISIS_KAFKA_BOOTSTRAP, as before bus URLs, and a
        # CRISIS_BUS_URL in the environment cannot move these tests onto another bus.
        bus = {"bus_url": "", "kafka_bootstrap": kafka.bootstrap, "kafka_idempotence": kafka.idempotence}

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            **bus,
            "kafka_topic": f"test-{uuid.uuid4().hex[:12]}",
            "kafka_partitions": 3,
            "kafka_fetch_wait_ms": 10,
            "keys_file": tmp_path / "keys.json",
            "orgs_file": tmp_path / "orgs.json",
            "webhooks_file": tmp_path / "webhooks.db",
            "api_port": 0,
            "gateway_port": 0,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    result: Settings = make_settings()
    return result


class Stack(Running):
    """A running bus, ledger, API and gateway, with a helper to make keys."""

    def add_key(self, org: str, role: Role | str, **kwargs: Any) -> str:
        _, key = self.keys.add(org, Role(role), **kwargs)
        return key


@pytest_asyncio.fixture
async def api_stack(settings: Settings) -> AsyncIterator[Stack]:
    async with stack(settings, gateway=False) as running:
        running.__class__ = Stack
        yield running  # type: ignore[misc]


@pytest_asyncio.fixture
async def full_stack(settings: Settings) -> AsyncIterator[Stack]:
    async with stack(settings) as running:
        running.__class__ = Stack
        yield running  # type: ignore[misc]
