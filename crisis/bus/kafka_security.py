"""How the Kafka clients connect: TLS and SASL options from Settings, and errors that name the cause.

Every producer, consumer and admin client of crisis.bus.kafka takes its connection options from
`connection_options`, so TLS and credentials cannot be forgotten on one of them. This module does not import
aiokafka: it builds plain keyword arguments and an `ssl.SSLContext`.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from crisis.config import Settings


class KafkaRefused(ConnectionError):
    """The brokers could not be reached as configured: the message names the cause and the setting."""


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client context that verifies the brokers' chain (and their names, unless turned off)."""
    ca = settings.kafka_ssl_ca_file
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaRefused(f"CRISIS_KAFKA_SSL_CA_FILE {ca} is not a readable PEM CA bundle: {exc}") from exc
    context.check_hostname = settings.kafka_ssl_check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    if settings.kafka_ssl_cert_file is not None and settings.kafka_ssl_key_file is not None:
        password = settings.kafka_ssl_key_password
        try:
            context.load_cert_chain(
                _existing(settings.kafka_ssl_cert_file, "CRISIS_KAFKA_SSL_CERT_FILE"),
                _existing(settings.kafka_ssl_key_file, "CRISIS_KAFKA_SSL_KEY_FILE"),
                password=password.get_secret_value() if password is not None else None,
            )
        except ssl.SSLError as exc:
            raise KafkaRefused(
                "the Kafka client certificate or key cannot be loaded (CRISIS_KAFKA_SSL_CERT_FILE, "
                f"CRISIS_KAFKA_SSL_KEY_FILE, CRISIS_KAFKA_SSL_KEY_PASSWORD): {exc.reason or exc}"
            ) from exc
    return context


def _existing(path: Path, name: str) -> str:
    if not path.is_file():
        raise KafkaRefused(f"{name} {path} does not exist")
    return str(path)


def connection_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments every aiokafka client of this process is created with."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": protocol,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
    }
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(settings)
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=password.get_secret_value() if password is not None else None,
        )
    return options


def describe_failure(settings: Settings, host: str, port: int, exc: BaseException) -> str:
    """One sentence naming why a connection to host:port failed, for the operator who must fix it."""
    where = f"Kafka at {host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
            return (
                f"{where}: its TLS certificate is not valid for the name {host} ({exc.verify_message}); "
                "connect under a name the certificate carries"
            )
        source = settings.kafka_ssl_ca_file or "the system trust store"
        return (
            f"{where}: its TLS certificate is not trusted ({exc.verify_message}); "
            f"it does not chain to a CA in {source} (CRISIS_KAFKA_SSL_CA_FILE)"
        )
    if isinstance(exc, ssl.SSLError):
        return f"{where}: the TLS handshake failed ({exc.reason or exc}); does it speak TLS on this port?"
    name = type(exc).__name__
    user, mechanism = settings.kafka_sasl_username, settings.kafka_sasl_mechanism
    if name == "UnsupportedSaslMechanismError":
        return f"{where} does not offer SASL mechanism {mechanism} (CRISIS_KAFKA_SASL_MECHANISM)"
    # Apache Kafka answers a wrong password with SaslAuthenticationFailed; a broker that ends the SCRAM
    # exchange with an error message instead trips aiokafka's parser with a KeyError: both are a refusal.
    if isinstance(exc, KeyError) or name in ("SaslAuthenticationFailed", "AuthenticationFailedError"):
        return (
            f"{where} refused the credentials of SASL user {user!r} ({mechanism}): wrong password or "
            "unknown user (CRISIS_KAFKA_SASL_USERNAME, CRISIS_KAFKA_SASL_PASSWORD)"
        )
    if isinstance(exc, TimeoutError):
        return (
            f"{where} did not answer within {settings.kafka_request_timeout_ms} ms "
            "(CRISIS_KAFKA_BOOTSTRAP, CRISIS_KAFKA_REQUEST_TIMEOUT_MS)"
        )
    if isinstance(exc, ConnectionRefusedError):
        return f"{where} refused the connection: nothing listens there (CRISIS_KAFKA_BOOTSTRAP)"
    if isinstance(exc, (ConnectionResetError, EOFError)) or name == "KafkaConnectionError":
        protocol = settings.kafka_security_protocol
        if protocol == "PLAINTEXT":
            hint = "it may expect TLS or SASL (CRISIS_KAFKA_SECURITY_PROTOCOL)"
        elif protocol.startswith("SASL_"):
            # Some brokers drop the connection rather than answer that they lack the mechanism.
            hint = (
                f"check that it listens with {protocol} and offers SASL mechanism {mechanism} "
                "(CRISIS_KAFKA_SASL_MECHANISM)"
            )
        else:
            hint = (
                "it may require SASL (CRISIS_KAFKA_SECURITY_PROTOCOL=SASL_SSL) or a client certificate "
                "(CRISIS_KAFKA_SSL_CERT_FILE)"
            )
        return f"{where} closed the connection ({exc}); {hint}"
    return f"{where}: {name}: {exc}"
