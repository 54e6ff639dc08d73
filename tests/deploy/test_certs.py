"""deploy/certs.sh makes certificates that Kafka clients verify, and that prove a client (mutual TLS).

The broker is the embedded one behind a TLS listener holding kafka-1's certificate
(tests/support/tls_front.py), reached as `localhost`, a name that certificate carries.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest

from crisis.broker import free_port
from crisis.bus.kafka_security import KafkaRefused
from crisis.config import Settings
from crisis.runtime import stack
from tests.deploy.checks import ROOT
from tests.support.tls_front import tansu, tls_front

pytestmark = pytest.mark.kafka


def make_secrets(out: Path) -> Path:
    done = subprocess.run(
        ["sh", str(ROOT / "deploy" / "certs.sh")],
        env={**os.environ, "OUT": str(out), "PUBLIC_HOST": "crisis.example.org"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


def test_certs_sh_makes_what_compose_mounts_and_keeps_it_on_a_second_run(tmp_path: Path) -> None:
    secrets = make_secrets(tmp_path / "secrets")
    compose = (ROOT / "docker-compose.yml").read_text()
    mounted = {
        line.split("./deploy/secrets/")[1].split(" ")[0]
        for line in compose.splitlines()
        if "./deploy/secrets/" in line
    }
    assert mounted and all((secrets / name).is_file() for name in mounted), mounted
    assert oct(secrets.stat().st_mode & 0o777) == "0o700"
    passwords = {(secrets / f"{user}.password").read_text() for user in ("crisis-api", "crisis-gateway")}
    assert len(passwords) == 2 and all(len(p) >= 32 and p.isalnum() for p in passwords)
    token = Settings(audit_token_file=secrets / "audit.token").audit_token
    assert token is not None and len(token.get_secret_value()) == 64  # 256 random bits, hex
    before = {p.name: p.read_bytes() for p in secrets.iterdir()}
    make_secrets(secrets)
    assert {p.name: p.read_bytes() for p in secrets.iterdir()} == before


async def test_a_client_verifies_the_broker_and_proves_itself_with_the_made_certificates(
    tmp_path: Path,
) -> None:
    secrets = make_secrets(tmp_path / "secrets")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=secrets / "ca.pem")
    server.load_cert_chain(secrets / "kafka-1.pem")  # Kafka's PEM store: key and chain in one file
    server.verify_mode = ssl.CERT_REQUIRED  # as the INTERNAL listener: ssl.client.auth=required
    front = free_port()
    base = {
        "bus_url": "",
        "kafka_bootstrap": f"localhost:{front}",
        "kafka_idempotence": False,
        "kafka_topic": f"test-{uuid.uuid4().hex[:12]}",
        "kafka_partitions": 1,
        "kafka_request_timeout_ms": 3000,
        "keys_file": tmp_path / "keys.json",
        "webhooks_file": tmp_path / "webhooks.db",
        "kafka_security_protocol": "SSL",
        "kafka_ssl_ca_file": secrets / "ca.pem",
        "api_port": 0,
    }
    async with tansu(front, authentication=False, host="localhost") as port, tls_front(server, front, port):
        with pytest.raises(KafkaRefused, match=r"closed the connection.*client certificate"):
            async with stack(Settings(**base), gateway=False):
                pytest.fail("connected without the client certificate the listener requires")
        mutual = Settings(
            **base, kafka_ssl_cert_file=secrets / "admin.crt", kafka_ssl_key_file=secrets / "admin.key"
        )
        async with stack(mutual, gateway=False) as running:
            assert await running.bus.healthy()
