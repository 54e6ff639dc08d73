"""A successful SASL_SSL login, each mechanism, through the whole stack; and a wrong password refused.

The embedded broker cannot hold users (it offers SCRAM only, refuses the request that would create a user
before a login, and keeps no user across a restart: docs/operations.md, "Kafka security"), so the login is
answered by a SASL front in the test process (tests/support/sasl_front.py): it terminates TLS, implements
the server side of SCRAM per RFC 5802 (SHA-256 as RFC 7677 gives it, and SHA-512) and PLAIN, and after the
login relays to the broker started without authentication. The clients are the real ones: aiokafka with the
options crisis.bus.kafka_security builds from Settings.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import struct
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
from tests.support.sasl_front import LoginFailed, SaslFront, ScramServer, sasl_front
from tests.support.tls_front import ATTACK, client_settings, coordinator, tansu

MECHANISMS = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
USERS = {"crisis-api": "api-secret-password", "crisis-gateway": "gateway-secret-password"}


@dataclass
class Front:
    bootstrap: str
    ca_file: Path
    directory: Path
    sasl: SaslFront

    def settings(self, mechanism: str, password: str, **values: Any) -> Settings:
        security = {
            "kafka_security_protocol": "SASL_SSL",
            "kafka_ssl_ca_file": self.ca_file,
            "kafka_sasl_mechanism": mechanism,
            "kafka_sasl_username": "crisis-api",
            "kafka_sasl_password": password,
        }
        return client_settings(self.bootstrap, self.directory, **{**security, **values})


@pytest_asyncio.fixture
async def front(tmp_path: Path) -> AsyncIterator[Front]:
    """The embedded broker, without authentication, behind a TLS listener that requires a SASL login."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(LOOPBACK).configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    async with (
        tansu(port, authentication=False) as upstream,
        sasl_front(context, port, upstream, USERS) as sasl,
    ):
        yield Front(f"{LOOPBACK}:{port}", ca_file, tmp_path, sasl)


def test_the_front_answers_the_scram_sha_256_exchange_of_rfc_7677() -> None:
    # RFC 7677, section 3: user "user", password "pencil", with the salt and server nonce given there.
    def server() -> ScramServer:
        return ScramServer(
            "sha256",
            {"user": "pencil"},
            salt=base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="),
            nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )

    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    exchange = server()
    first = exchange.first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    assert first == f"r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".encode()
    final = exchange.final(f"c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=".encode())
    assert final == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    # One bit off in the proof, and the login fails.
    refused = server()
    refused.first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    with pytest.raises(LoginFailed):
        refused.final(f"c=biws,r={nonce},p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=".encode())


@pytest.mark.kafka
@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_a_crisis_and_an_indicator_go_through_kafka_after_a_sasl_login(
    front: Front, mechanism: str
) -> None:
    settings = front.settings(mechanism, USERS["crisis-api"])
    async with stack(settings) as running, coordinator(running) as http:
        created = await http.post("/v1/crises", json=ATTACK)
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        shared = await http.post(
            f"/v1/crises/{cid}/indicators", json={"indicators": [{"kind": "md5", "value": "9" * 32}]}
        )
        assert shared.status_code == 200, shared.text
        read = await http.get(f"/v1/crises/{cid}")
        assert read.json()["title"] == "Attack"
        listed = await http.get(f"/v1/crises/{cid}/indicators")
        assert [i["value"] for i in listed.json()["items"]] == ["9" * 32]
    # Every connection of the stack (bootstrap and leader, events and keys) logged in the same way.
    assert front.sasl.logins
    assert set(front.sasl.logins) == {("crisis-api", mechanism)}


@pytest.mark.kafka
@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_a_wrong_password_stops_start_up_naming_the_user(front: Front, mechanism: str) -> None:
    with pytest.raises(
        KafkaRefused, match=f"refused the credentials of SASL user 'crisis-api' \\({mechanism}\\)"
    ) as refused:
        async with stack(front.settings(mechanism, "not-the-password")):
            pytest.fail("started with credentials the broker refused")
    assert "not-the-password" not in str(refused.value)


@pytest.mark.kafka
async def test_without_sasl_the_front_lets_nothing_through(front: Front) -> None:
    with pytest.raises(KafkaRefused, match=r"closed the connection .* may require SASL"):
        async with stack(front.settings("PLAIN", "", kafka_security_protocol="SSL"), gateway=False):
            pytest.fail("started without logging in")
    assert front.sasl.logins == []


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> bytes | None:
    """Send one size-prefixed frame; its size-prefixed answer, or None when the front closed instead."""
    writer.write(struct.pack(">i", len(payload)) + payload)
    await writer.drain()
    try:
        (size,) = struct.unpack(">i", await reader.readexactly(4))
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None


def _header(api_key: int, version: int, correlation_id: int) -> bytes:
    return struct.pack(">hhih", api_key, version, correlation_id, 4) + b"test"


@pytest.mark.kafka
@pytest.mark.parametrize("password", [USERS["crisis-gateway"], "wrong"])
async def test_the_versions_aiokafka_does_not_send_log_in_and_refuse_alike(
    front: Front, password: str
) -> None:
    # aiokafka sends SaslHandshake v1 and SaslAuthenticate v1; other clients send v0 (bare tokens after
    # the handshake) or SaslAuthenticate v2 (flexible: compact bytes and tagged fields).
    context = ssl.create_default_context(cafile=str(front.ca_file))
    token = f"\0crisis-gateway\0{password}".encode()
    host, port = front.bootstrap.split(":")
    for handshake_version in (0, 1):
        reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
        handshake = await _exchange(
            reader, writer, _header(17, handshake_version, 1) + struct.pack(">h", 5) + b"PLAIN"
        )
        assert handshake is not None
        assert handshake[4:6] == b"\0\0"  # no error
        assert b"SCRAM-SHA-512" in handshake and b"PLAIN" in handshake
        if handshake_version == 0:
            answer = await _exchange(reader, writer, token)
            assert answer == (b"" if password != "wrong" else None)
        else:
            # Header v2 (a tagged-field count of 0), then compact bytes (length + 1) and no tagged fields.
            request = _header(36, 2, 2) + b"\0" + bytes([len(token) + 1]) + token + b"\0"
            answer = await _exchange(reader, writer, request)
            assert answer is not None
            assert struct.unpack_from(">ih", answer, 0)[0] == 2
            error = struct.unpack_from(">h", answer, 5)[0]  # after the correlation id and the tag count
            assert error == (0 if password != "wrong" else 58)
        if password != "wrong":
            # Logged in: an ApiVersions request reaches the broker, which answers it.
            versions = await _exchange(reader, writer, _header(18, 2, 3))
            assert versions is not None
            assert struct.unpack_from(">ih", versions) == (3, 0)
        else:
            assert await reader.read() == b""
        writer.close()
    expected = [("crisis-gateway", "PLAIN")] * 2 if password != "wrong" else []
    assert front.sasl.logins == expected
