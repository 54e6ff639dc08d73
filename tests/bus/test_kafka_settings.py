"""Kafka security settings: what production refuses, secrets kept out of sight, one set of client options."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiokafka.errors import SaslAuthenticationFailed, UnsupportedSaslMechanismError
from pydantic import ValidationError

from crisis.bus.kafka_security import KafkaRefused, connection_options, describe_failure
from crisis.config import Settings

PASSWORD = "never-shown-4711"
SASL_SSL: dict[str, Any] = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "crisis-api",
    "kafka_sasl_password": PASSWORD,
}
PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "kafka_bootstrap": "k1:9093",
    "kafka_replication": 3,
}


def settings(**values: Any) -> Settings:
    # Explicit values: the machine's CRISIS_ variables must not decide these cases.
    defaults: dict[str, Any] = {"bus_url": "", "kafka_bootstrap": "k1:9093"}
    return Settings(**{**defaults, **values})


@pytest.mark.parametrize(
    "protocol",
    [{"kafka_security_protocol": "PLAINTEXT"}, {**SASL_SSL, "kafka_security_protocol": "SASL_PLAINTEXT"}],
)
def test_production_refuses_an_unencrypted_log(protocol: dict[str, Any]) -> None:
    with pytest.raises(
        ValidationError, match=r"production refuses CRISIS_KAFKA_SECURITY_PROTOCOL=.*PLAINTEXT"
    ):
        settings(**PRODUCTION, **protocol)


def test_production_refuses_tls_that_does_not_say_who_connects(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="SSL with CRISIS_KAFKA_SSL_CERT_FILE"):
        settings(**PRODUCTION, kafka_security_protocol="SSL")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    mutual = settings(
        **PRODUCTION, kafka_security_protocol="SSL", kafka_ssl_cert_file=cert, kafka_ssl_key_file=key
    )
    assert mutual.kafka_authenticated_and_encrypted
    assert settings(**PRODUCTION, **SASL_SSL).kafka_authenticated_and_encrypted


def test_sasl_needs_a_user_and_a_password() -> None:
    with pytest.raises(ValidationError, match="needs CRISIS_KAFKA_SASL_USERNAME"):
        settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="crisis-api")
    with pytest.raises(ValidationError, match="needs CRISIS_KAFKA_SASL_USERNAME"):
        settings(kafka_security_protocol="SASL_SSL", kafka_sasl_password=PASSWORD)


def test_the_password_comes_from_a_file_and_never_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    monkeypatch.setenv("CRISIS_KAFKA_SASL_PASSWORD_FILE", str(secret))
    loaded = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="crisis-api")
    assert loaded.kafka_sasl_password is not None
    assert loaded.kafka_sasl_password.get_secret_value() == PASSWORD  # the newline is not part of it
    for shown in (repr(loaded), str(loaded), loaded.model_dump_json(), str(loaded.model_dump())):
        assert PASSWORD not in shown
    assert connection_options(loaded)["sasl_plain_password"] == PASSWORD


def test_a_password_file_that_is_missing_empty_or_doubled_is_refused(tmp_path: Path) -> None:
    missing, empty = tmp_path / "missing", tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ValidationError, match=r"CRISIS_KAFKA_SASL_PASSWORD_FILE .* cannot be read"):
        settings(**SASL_SSL | {"kafka_sasl_password": None}, kafka_sasl_password_file=missing)
    with pytest.raises(ValidationError, match=r"CRISIS_KAFKA_SASL_PASSWORD_FILE .* is empty"):
        settings(**SASL_SSL | {"kafka_sasl_password": None}, kafka_sasl_password_file=empty)
    with pytest.raises(ValidationError, match="not both"):
        settings(**SASL_SSL, kafka_sasl_password_file=empty)


def test_a_client_certificate_needs_its_key() -> None:
    with pytest.raises(ValidationError, match="CRISIS_KAFKA_SSL_CERT_FILE and CRISIS_KAFKA_SSL_KEY_FILE go"):
        settings(kafka_security_protocol="SSL", kafka_ssl_cert_file=Path("client.pem"))


def test_every_client_verifies_the_brokers_and_authenticates(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    options = connection_options(settings(**SASL_SSL, kafka_ssl_ca_file=ca_file))
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert options == {
        "bootstrap_servers": "k1:9093",
        "security_protocol": "SASL_SSL",
        "request_timeout_ms": 5000,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "crisis-api",
        "sasl_plain_password": PASSWORD,
    }
    relaxed = connection_options(settings(**SASL_SSL, kafka_ssl_check_hostname=False))["ssl_context"]
    assert relaxed.verify_mode == ssl.CERT_REQUIRED and not relaxed.check_hostname
    plain = connection_options(settings())
    assert "ssl_context" not in plain and "sasl_mechanism" not in plain


def test_a_client_certificate_is_loaded_and_a_broken_one_named(tmp_path: Path) -> None:
    client = trustme.CA().issue_cert("crisis-api")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    client.cert_chain_pems[0].write_to_path(str(cert))
    client.private_key_pem.write_to_path(str(key))
    mutual = {"kafka_security_protocol": "SSL", "kafka_ssl_cert_file": cert, "kafka_ssl_key_file": key}
    assert isinstance(connection_options(settings(**mutual))["ssl_context"], ssl.SSLContext)
    with pytest.raises(KafkaRefused, match=r"CRISIS_KAFKA_SSL_KEY_FILE .* does not exist"):
        connection_options(settings(**mutual | {"kafka_ssl_key_file": tmp_path / "gone.key"}))
    with pytest.raises(KafkaRefused, match="client certificate or key cannot be loaded"):
        connection_options(settings(**mutual | {"kafka_ssl_key_file": cert}))
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(KafkaRefused, match=r"CRISIS_KAFKA_SSL_CA_FILE .* is not a readable PEM CA bundle"):
        connection_options(settings(kafka_security_protocol="SSL", kafka_ssl_ca_file=garbage))


def test_apache_kafka_refusals_are_named() -> None:
    s = settings(**SASL_SSL)
    wrong = describe_failure(s, "k1", 9093, SaslAuthenticationFailed("Authentication failed"))
    assert wrong.startswith(
        "Kafka at k1:9093 refused the credentials of SASL user 'crisis-api' (SCRAM-SHA-512)"
    )
    assert PASSWORD not in wrong
    mechanism = describe_failure(s, "k1", 9093, UnsupportedSaslMechanismError())
    assert (
        mechanism
        == "Kafka at k1:9093 does not offer SASL mechanism SCRAM-SHA-512 (CRISIS_KAFKA_SASL_MECHANISM)"
    )
    nobody = describe_failure(s, "k1", 9093, ConnectionRefusedError(111, "Connection refused"))
    assert "nothing listens there (CRISIS_KAFKA_BOOTSTRAP)" in nobody
    silent = describe_failure(s, "k1", 9093, TimeoutError())
    assert silent.startswith("Kafka at k1:9093 did not answer within 5000 ms (CRISIS_KAFKA_BOOTSTRAP")


def test_an_encrypted_client_key_opens_with_its_password_only(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    client = trustme.CA().issue_cert("crisis-api")
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"p4ss-for-key"),
    )
    cert, key_file, password_file = (
        tmp_path / "client.pem",
        tmp_path / "client.key",
        tmp_path / "key-password",
    )
    client.cert_chain_pems[0].write_to_path(str(cert))
    key_file.write_bytes(encrypted)
    password_file.write_text("p4ss-for-key\n")
    mutual = {"kafka_security_protocol": "SSL", "kafka_ssl_cert_file": cert, "kafka_ssl_key_file": key_file}
    opened = connection_options(settings(**mutual, kafka_ssl_key_password_file=password_file))
    assert isinstance(opened["ssl_context"], ssl.SSLContext)
    with pytest.raises(KafkaRefused, match="CRISIS_KAFKA_SSL_KEY_PASSWORD"):
        connection_options(settings(**mutual, kafka_ssl_key_password="wrong"))
    assert "p4ss-for-key" not in repr(settings(**mutual, kafka_ssl_key_password_file=password_file))
