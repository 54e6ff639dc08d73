"""Kafka over TLS and SASL: a real round trip through TLS, and refusals that name their cause.

Certificates are made in each test (trustme). The embedded broker cannot serve TLS itself, so a TLS
listener in the test process fronts it (tests/support/tls_front.py); its SASL is the broker's own
(`--authentication`). A successful SASL login cannot be shown on this broker: it offers SCRAM only, refuses
the request that would create a user before a login, and keeps no user across a restart (docs/operations.md,
"Kafka security"): the broker's refusals are tested here, the successful login in test_kafka_sasl.py, through
a SASL front in the test process that implements the server side of SCRAM per RFC 5802.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import trustme

from crisis.broker import LOOPBACK, free_port
from crisis.bus.kafka_security import KafkaRefused
from crisis.config import Settings
from crisis.runtime import stack
from tests.support.tls_front import ATTACK, client_settings, coordinator, tansu, tls_front

pytestmark = pytest.mark.kafka

PASSWORD = "s3cret-kafka-password"


@dataclass
class Broker:
    bootstrap: str
    ca: trustme.CA
    directory: Path

    def ca_file(self, ca: trustme.CA | None = None) -> Path:
        chosen = ca or self.ca
        path = self.directory / f"ca-{uuid.uuid4().hex[:8]}.pem"
        chosen.cert_pem.write_to_path(str(path))
        return path

    def settings(self, **values: Any) -> Settings:
        security = {"kafka_security_protocol": "SSL", "kafka_ssl_ca_file": self.ca_file()}
        return client_settings(self.bootstrap, self.directory, **{**security, **values})


async def _broker(tmp_path: Path, *, names: tuple[str, ...], authentication: bool) -> AsyncIterator[Broker]:
    ca = trustme.CA()
    server = ca.issue_cert(*names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.configure_cert(context)
    front = free_port()
    async with tansu(front, authentication=authentication) as port, tls_front(context, front, port):
        yield Broker(f"{LOOPBACK}:{front}", ca, tmp_path)


@pytest_asyncio.fixture
async def tls_broker(tmp_path: Path) -> AsyncIterator[Broker]:
    """The embedded broker behind TLS, with a certificate for 127.0.0.1 signed by a CA of its own."""
    async for broker in _broker(tmp_path, names=(LOOPBACK, "localhost"), authentication=False):
        yield broker


@pytest_asyncio.fixture
async def sasl_broker(tmp_path: Path) -> AsyncIterator[Broker]:
    """The embedded broker behind TLS, requiring SASL on every connection."""
    async for broker in _broker(tmp_path, names=(LOOPBACK,), authentication=True):
        yield broker


async def test_events_round_trip_over_tls_through_the_api(tls_broker: Broker) -> None:
    settings = tls_broker.settings()
    async with stack(settings, gateway=False) as running, coordinator(running) as http:
        created = await http.post("/v1/crises", json=ATTACK)
        assert created.status_code == 201, created.text
        read = await http.get(f"/v1/crises/{created.json()['id']}")
        assert read.status_code == 200
        assert read.json()["title"] == "Attack"


async def test_a_certificate_from_another_ca_stops_start_up_naming_the_cause(tls_broker: Broker) -> None:
    stranger = tls_broker.ca_file(trustme.CA())
    with pytest.raises(KafkaRefused, match="its TLS certificate is not trusted") as refused:
        async with stack(tls_broker.settings(kafka_ssl_ca_file=stranger)):
            pytest.fail("started against an untrusted broker")
    assert str(stranger) in str(refused.value)


async def test_the_system_trust_store_does_not_trust_a_private_ca(tls_broker: Broker) -> None:
    with pytest.raises(KafkaRefused, match=r"not trusted .* the system trust store"):
        async with stack(tls_broker.settings(kafka_ssl_ca_file=None)):
            pytest.fail("started against an untrusted broker")


async def test_a_certificate_for_another_name_is_refused_unless_name_checks_are_off(tmp_path: Path) -> None:
    async for broker in _broker(tmp_path, names=("kafka.example.org",), authentication=False):
        with pytest.raises(KafkaRefused, match=r"not valid for the name 127\.0\.0\.1"):
            async with stack(broker.settings(), gateway=False):
                pytest.fail("started against a broker whose certificate names another host")
        # The chain is still verified with name checks off: only the name is accepted as it is.
        async with stack(broker.settings(kafka_ssl_check_hostname=False), gateway=False) as running:
            assert await running.bus.healthy()


async def test_a_plaintext_client_at_a_tls_listener_is_told_what_to_check(tls_broker: Broker) -> None:
    with pytest.raises(KafkaRefused, match=r"closed the connection .* may expect TLS or SASL"):
        async with stack(tls_broker.settings(kafka_security_protocol="PLAINTEXT"), gateway=False):
            pytest.fail("started speaking plaintext to a TLS listener")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
async def test_wrong_sasl_credentials_are_refused_naming_the_user_not_the_password(
    sasl_broker: Broker, mechanism: str
) -> None:
    settings = sasl_broker.settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="crisis-api",
        kafka_sasl_password=PASSWORD,
    )
    with pytest.raises(
        KafkaRefused, match=f"refused the credentials of SASL user 'crisis-api' \\({mechanism}\\)"
    ):
        async with stack(settings):
            pytest.fail("started with credentials the broker refused")


async def test_a_mechanism_the_broker_does_not_offer_is_named(sasl_broker: Broker) -> None:
    # This broker offers SCRAM only and drops the connection when asked for PLAIN (Apache Kafka answers
    # UNSUPPORTED_SASL_MECHANISM instead: see test_kafka_settings.py for that message).
    settings = sasl_broker.settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="crisis-api",
        kafka_sasl_password=PASSWORD,
    )
    with pytest.raises(KafkaRefused, match="offers SASL mechanism PLAIN"):
        async with stack(settings):
            pytest.fail("started with a mechanism the broker does not offer")


async def test_without_credentials_a_broker_requiring_sasl_is_not_used(sasl_broker: Broker) -> None:
    with pytest.raises(KafkaRefused, match=r"closed the connection .* may require SASL"):
        async with stack(sasl_broker.settings(), gateway=False):
            pytest.fail("started without authenticating to a broker that requires it")


async def test_serve_exits_with_one_line_naming_the_refusal_and_never_the_password(
    sasl_broker: Broker, tmp_path: Path
) -> None:
    password_file = tmp_path / "kafka-password"
    password_file.write_text(PASSWORD + "\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")},
        "CRISIS_KAFKA_BOOTSTRAP": sasl_broker.bootstrap,
        "CRISIS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CRISIS_KAFKA_SASL_USERNAME": "crisis-gateway",
        "CRISIS_KAFKA_SASL_PASSWORD_FILE": str(password_file),
        "CRISIS_KAFKA_SSL_CA_FILE": str(sasl_broker.ca_file()),
        "CRISIS_KAFKA_IDEMPOTENCE": "false",
        "CRISIS_KAFKA_REQUEST_TIMEOUT_MS": "3000",
        "CRISIS_KEYS_FILE": str(tmp_path / "keys.json"),
        "CRISIS_LOG_LEVEL": "debug",
    }
    # A child process, awaited: the TLS front runs in this test's event loop and must keep serving.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crisis",
        "serve",
        "gateway",
        "--port",
        str(free_port()),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    output = (out + err).decode()
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith("crisis: Kafka at 127.0.0.1:"), output
    assert "refused the credentials of SASL user 'crisis-gateway'" in last
    assert PASSWORD not in output  # debug logging included
