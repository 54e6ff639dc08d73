"""The bus chosen by URL: which URLs name which adapter, what production refuses, and lazy imports."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from crisis.bus.adapters import open_bus
from crisis.bus.memory import MemoryBus
from crisis.config import Settings
from crisis.runtime import StartupError, stack
from tests.api.conftest import api_processes, auth
from tests.conftest import KafkaTarget, every_adapter
from tests.gateway.events import crisis_opened

PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "kafka_replication": 3,
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "crisis-api",
    "kafka_sasl_password": "secret",
}


def settings(**values: Any) -> Settings:
    # Explicit values: the machine's CRISIS_ variables must not decide these cases.
    defaults: dict[str, Any] = {"bus_url": "", "kafka_bootstrap": ""}
    return Settings(**{**defaults, **values})


def test_the_bus_url_names_the_adapter_and_the_bootstrap_still_works() -> None:
    assert settings(bus_url="memory://").bus_target == "memory://"
    assert settings(bus_url="kafka://k1:9092,k2:9092").bus_target == "kafka://k1:9092,k2:9092"
    assert settings(kafka_bootstrap="k1:9092").bus_target == "kafka://k1:9092"
    assert settings(bus_url="memory://", kafka_bootstrap="k1:9092").bus_target == "memory://"
    assert settings().bus_target == ""


@pytest.mark.parametrize("url", ["redis://x:6379", "kafka://", "memory", "k1:9092", "Memory://"])
def test_other_urls_are_refused_at_start_up(url: str) -> None:
    with pytest.raises(ValidationError, match="CRISIS_BUS_URL must be"):
        settings(bus_url=url)


def test_production_refuses_the_memory_bus_and_a_missing_one() -> None:
    with pytest.raises(ValidationError, match="refuses CRISIS_BUS_URL=memory://"):
        settings(bus_url="memory://", **PRODUCTION)
    with pytest.raises(ValidationError, match="must name the Kafka cluster"):
        settings(**PRODUCTION)
    assert settings(bus_url="kafka://k1:9092", **PRODUCTION).bus_target == "kafka://k1:9092"
    assert settings(kafka_bootstrap="k1:9092", **PRODUCTION).bus_target == "kafka://k1:9092"


async def test_a_stack_without_a_bus_does_not_start(tmp_path: Any) -> None:
    with pytest.raises(StartupError, match="no bus named"):
        async with stack(settings(keys_file=tmp_path / "keys.json")):
            pass


def test_the_memory_bus_runs_without_loading_the_kafka_client() -> None:
    code = (
        "import asyncio, sys\n"
        "from crisis.bus.adapters import open_bus\n"
        "from crisis.config import Settings\n"
        "async def main():\n"
        "    async with open_bus(Settings(bus_url='memory://')) as bus:\n"
        "        assert await bus.healthy()\n"
        "asyncio.run(main())\n"
        "assert 'aiokafka' not in sys.modules, 'aiokafka was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


async def test_memory_url_opens_a_memory_bus() -> None:
    async with open_bus(settings(bus_url="memory://", kafka_partitions=4)) as bus:
        assert isinstance(bus, MemoryBus)
        assert (await bus.describe()).partitions == 4


@pytest.mark.kafka
async def test_a_kafka_url_alone_reaches_the_broker(make_settings: Any, kafka: KafkaTarget) -> None:
    named = make_settings(bus_url=f"kafka://{kafka.bootstrap}", kafka_bootstrap="")
    async with open_bus(named) as bus:
        [position] = await bus.publish([crisis_opened()])
        async with bus.reader() as reader:
            got = []
            for _ in range(100):
                got += await reader.next_batch(0.05)
                if got and reader.caught_up():
                    break
    assert [(d.partition, d.offset) for d in got] == [(position.partition, position.offset)]


@every_adapter
def test_crisis_serve_api_runs_on_the_bus_its_url_names(make_settings: Any) -> None:
    """`CRISIS_BUS_URL=memory:// crisis serve api` is a whole API in one process, for a quick demo."""
    served = make_settings()
    with api_processes(served, 1) as [api]:
        from crisis.domain.enums import Role
        from crisis.keys import KeyStore

        _, key = KeyStore(served.keys_file).add("hub", Role.COORDINATOR)
        body = {"title": "Demo", "status": "activated", "level": 1, "criteria": ["viral_spread"]}
        created = httpx.post(f"{api.url}/v1/crises", json=body, headers=auth(key), timeout=10)
        assert created.status_code == 201, created.text
        listed = httpx.get(f"{api.url}/v1/crises", headers=auth(key), timeout=10).json()
        assert [c["id"] for c in listed["items"]] == [created.json()["id"]]
