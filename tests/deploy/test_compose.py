"""docker-compose.yml and the files it runs, checked offline: the Compose schema and what it cannot see.

Every check is shown to fail on a copy of the files with the one thing it guards removed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy.checks import compose_problems, compose_schema_problems, load_compose, valid_cluster_id

Compose = dict[str, Any]
Files = dict[str, str]


def test_the_compose_file_follows_the_compose_specification() -> None:
    compose, _ = load_compose()
    assert compose_schema_problems(compose) == []


def test_the_compose_deployment_keeps_its_log_and_speaks_only_tls() -> None:
    compose, files = load_compose()
    assert compose_problems(compose, files) == []


def test_the_schema_check_rejects_what_compose_would_refuse() -> None:
    compose, _ = load_compose()
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["depends_on"]["kafka-setup"]["condition"] = "service_finished"
    broken["services"]["gateway"]["restart_policy"] = "always"  # a misspelt key
    problems = compose_schema_problems(broken)
    assert any("'service_finished' is not one of" in p for p in problems), problems
    assert any("restart_policy" in p for p in problems), problems


def _drop_volume(compose: Compose, files: Files) -> None:
    compose["services"]["kafka-2"]["volumes"] = ["./deploy:/deploy:ro"]


def _anonymous_volume(compose: Compose, files: Files) -> None:
    del compose["volumes"]["kafka-3-data"]


def _no_cluster_id(compose: Compose, files: Files) -> None:
    del compose["services"]["kafka-1"]["environment"]["CLUSTER_ID"]


def _old_cluster_id(compose: Compose, files: Files) -> None:
    compose["services"]["kafka-1"]["environment"]["CLUSTER_ID"] = "crisis-bus-kraft-cluster-01"


def _plaintext_listener(compose: Compose, files: Files) -> None:
    files["deploy/kafka/broker.sh"] = files["deploy/kafka/broker.sh"].replace(
        "CLIENT:SASL_SSL", "CLIENT:PLAINTEXT"
    )


def _plaintext_by_environment(compose: Compose, files: Files) -> None:
    compose["services"]["kafka-2"]["environment"]["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"] = (
        "PLAINTEXT:PLAINTEXT"
    )


def _client_without_tls(compose: Compose, files: Files) -> None:
    compose["services"]["gateway"]["environment"]["CRISIS_KAFKA_SECURITY_PROTOCOL"] = "SASL_PLAINTEXT"


def _no_proxy_tls(compose: Compose, files: Files) -> None:
    files["deploy/Caddyfile"] = "\n".join(
        line for line in files["deploy/Caddyfile"].splitlines() if not line.strip().startswith("tls ")
    )


def _api_published(compose: Compose, files: Files) -> None:
    compose["services"]["api"]["ports"] = ["8000:8000"]


def _shared_principal(compose: Compose, files: Files) -> None:
    compose["services"]["gateway"]["environment"]["CRISIS_KAFKA_SASL_USERNAME"] = "crisis-api"


def _gateway_writes(compose: Compose, files: Files) -> None:
    files["deploy/kafka-acls.sh"] += (
        'acl --allow-principal User:crisis-gateway --operation Write --topic "$TOPIC"\n'
    )


def _gateway_writes_keys(compose: Compose, files: Files) -> None:
    files["deploy/kafka-acls.sh"] += (
        'acl --allow-principal User:crisis-gateway --operation Write --topic "$KEYS_TOPIC"\n'
    )


def _gateway_cannot_read_keys(compose: Compose, files: Files) -> None:
    files["deploy/kafka-acls.sh"] = "\n".join(
        line
        for line in files["deploy/kafka-acls.sh"].splitlines()
        if not ("User:crisis-gateway" in line and "KEYS_TOPIC" in line)
    )


def _no_keys_topic(compose: Compose, files: Files) -> None:
    files["deploy/topics.sh"] = files["deploy/topics.sh"].split("# The data keys")[0]


def _keys_not_compacted(compose: Compose, files: Files) -> None:
    files["deploy/topics.sh"] = files["deploy/topics.sh"].replace(
        "cleanup.policy=compact", "cleanup.policy=delete"
    )


def _no_audit_token(compose: Compose, files: Files) -> None:
    del compose["services"]["gateway"]["environment"]["CRISIS_AUDIT_TOKEN_FILE"]


def _replication_two(compose: Compose, files: Files) -> None:
    files["deploy/topics.sh"] = files["deploy/topics.sh"].replace(
        "--replication-factor 3", "--replication-factor 2"
    )


def _no_min_isr(compose: Compose, files: Files) -> None:
    files["deploy/topics.sh"] = files["deploy/topics.sh"].replace("--config min.insync.replicas=2", "")


def _no_readiness(compose: Compose, files: Files) -> None:
    del compose["services"]["gateway"]["healthcheck"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_drop_volume, "kafka-2 keeps its log outside a named volume"),
        (_anonymous_volume, "kafka-3 keeps its log outside a named volume"),
        (_no_cluster_id, "kafka-1: CLUSTER_ID None is not a 22-character base64 UUID"),
        (_old_cluster_id, "kafka-1: CLUSTER_ID 'crisis-bus-kraft-cluster-01' is not a 22-character"),
        (_plaintext_listener, "listener CLIENT speaks PLAINTEXT, not TLS"),
        (
            _plaintext_by_environment,
            "kafka-2: KAFKA_LISTENER_SECURITY_PROTOCOL_MAP names a PLAINTEXT listener",
        ),
        (_client_without_tls, "gateway: CRISIS_KAFKA_SECURITY_PROTOCOL is not SSL or SASL_SSL"),
        (_no_proxy_tls, "deploy/Caddyfile serves no certificate"),
        (_api_published, "api publishes a port"),
        (_shared_principal, "share a Kafka principal"),
        (_gateway_writes, "lets the gateway change crisis.events: ['Write']"),
        (_gateway_writes_keys, "lets the gateway change crisis.events.keys: ['Write']"),
        (_gateway_cannot_read_keys, "crisis-gateway may not ['Describe', 'Read'] crisis.events.keys"),
        (_no_keys_topic, "deploy/topics.sh does not create crisis.events.keys"),
        (_keys_not_compacted, "crisis.events.keys is not compacted"),
        (_no_audit_token, "gateway: no CRISIS_AUDIT_TOKEN_FILE"),
        (_replication_two, "not replicated 3 times"),
        (_no_min_isr, "min.insync.replicas=2"),
        (_no_readiness, "gateway has no /readyz health check"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_each_check_fails_when_what_it_guards_is_removed(
    mutate: Callable[[Compose, Files], None], expected: str
) -> None:
    compose, files = load_compose()
    mutate(compose, files)
    problems = compose_problems(compose, files)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("TLySdmXnSPCssx8Jymx3Uw", True),
        ("MkU3OEVBNTcwNTJENDM2Qk", True),  # Kafka's documentation example
        ("crisis-bus-kraft-cluster-01", False),
        ("TLySdmXnSPCssx8Jymx3U", False),  # 21 characters
        ("TLySdmXnSPCssx8Jymx3U=", False),  # padding is not part of it
        ("TLySdmXnSPCssx8Jymx3U+", False),  # standard, not URL-safe, base64
        (None, False),
    ],
)
def test_the_cluster_id_is_a_base64_uuid(value: object, valid: bool) -> None:
    assert valid_cluster_id(value) is valid
