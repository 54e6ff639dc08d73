"""deploy/k8s checked offline: Kubernetes schemas (kubernetes-validate), Strimzi's CRD schemas kept in
tests/vendor/strimzi, and what the schemas cannot see. Every check is shown to fail on a mutated copy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy.checks import kubernetes_problems, kubernetes_schema_problems, load_manifests

Docs = list[dict[str, Any]]


def one(docs: Docs, kind: str, name: str | None = None) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))


def test_every_manifest_follows_its_schema() -> None:
    assert kubernetes_schema_problems(load_manifests()) == []


def test_the_manifests_run_kafka_through_strimzi_safely() -> None:
    assert kubernetes_problems(load_manifests()) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: one(d, "Deployment", "crisis-api")["spec"].update(replica=2), "'replica' was unexpected"),
        (lambda d: one(d, "KafkaTopic")["spec"].update(replica=3), "'replica' was unexpected"),
        (lambda d: one(d, "KafkaNodePool")["spec"]["storage"].update(type="disk"), "'disk' is not one of"),
        (
            lambda d: one(d, "KafkaUser", "crisis-gateway")["spec"]["authorization"]["acls"][0].update(
                operations=["Peek"]
            ),
            "'Peek' is not one of",
        ),
        (
            lambda d: d.append({"apiVersion": "example.org/v1", "kind": "Broker", "metadata": {"name": "x"}}),
            "Broker x: no schema",
        ),
    ],
    ids=["deployment-typo", "topic-typo", "storage-type", "acl-operation", "unknown-kind"],
)
def test_the_schemas_reject_what_the_api_server_would(mutate: Callable[[Docs], None], expected: str) -> None:
    docs = load_manifests()
    mutate(docs)
    problems = kubernetes_schema_problems(docs)
    assert any(expected in p for p in problems), problems


def _ephemeral(docs: Docs) -> None:
    one(docs, "KafkaNodePool")["spec"]["storage"] = {"type": "ephemeral"}


def _no_tls(docs: Docs) -> None:
    one(docs, "Kafka")["spec"]["kafka"]["listeners"][0]["tls"] = False


def _plain_listener(docs: Docs) -> None:
    listeners = one(docs, "Kafka")["spec"]["kafka"]["listeners"]
    listeners.append({"name": "plain", "port": 9092, "type": "internal", "tls": False})


def _no_authentication(docs: Docs) -> None:
    del one(docs, "Kafka")["spec"]["kafka"]["listeners"][0]["authentication"]


def _two_replicas(docs: Docs) -> None:
    one(docs, "KafkaTopic")["spec"]["replicas"] = 2


def _min_isr_one(docs: Docs) -> None:
    one(docs, "KafkaTopic")["spec"]["config"]["min.insync.replicas"] = 1


def _gateway_writes(docs: Docs) -> None:
    one(docs, "KafkaUser", "crisis-gateway")["spec"]["authorization"]["acls"][0]["operations"].append("Write")


def _gateway_writes_keys(docs: Docs) -> None:
    acls = one(docs, "KafkaUser", "crisis-gateway")["spec"]["authorization"]["acls"]
    [keys] = [acl for acl in acls if acl["resource"]["name"] == "crisis.events.keys"]
    keys["operations"].append("Write")


def _api_cannot_destroy_keys(docs: Docs) -> None:
    spec = one(docs, "KafkaUser", "crisis-api")["spec"]["authorization"]
    spec["acls"] = [acl for acl in spec["acls"] if acl["resource"]["name"] != "crisis.events.keys"]


def _no_keys_topic(docs: Docs) -> None:
    docs.remove(one(docs, "KafkaTopic", "crisis.events.keys"))


def _keys_deleted(docs: Docs) -> None:
    one(docs, "KafkaTopic", "crisis.events.keys")["spec"]["config"]["cleanup.policy"] = "delete"


def _no_audit_token(docs: Docs) -> None:
    container = one(docs, "Deployment", "crisis-gateway")["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "CRISIS_AUDIT_TOKEN"]


def _statefulset(docs: Docs) -> None:
    docs.append({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "kafka"}, "spec": {}})


def _tcp_readiness(docs: Docs) -> None:
    container = one(docs, "Deployment", "crisis-gateway")["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"] = {"tcpSocket": {"port": "stream"}}


def _no_budget(docs: Docs) -> None:
    docs.remove(one(docs, "PodDisruptionBudget", "crisis-gateway"))


def _no_autoscaler(docs: Docs) -> None:
    docs.remove(one(docs, "HorizontalPodAutoscaler", "crisis-api"))


def _no_network_policy(docs: Docs) -> None:
    docs.remove(one(docs, "NetworkPolicy"))


def _ingress_without_tls(docs: Docs) -> None:
    del one(docs, "Ingress")["spec"]["tls"]


def _plaintext_clients(docs: Docs) -> None:
    one(docs, "ConfigMap")["data"]["CRISIS_KAFKA_SECURITY_PROTOCOL"] = "PLAINTEXT"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_ephemeral, "keeps its log on ephemeral storage"),
        (_no_tls, "listener tls does not use TLS"),
        (_plain_listener, "listener plain does not use TLS"),
        (_no_authentication, "authenticates nobody"),
        (_two_replicas, "replicas 2, not 3"),
        (_min_isr_one, "min.insync.replicas is not 2"),
        (_gateway_writes, "crisis-gateway may ['Write']"),
        (_gateway_writes_keys, "lets the gateway change crisis.events.keys: ['Write']"),
        (_api_cannot_destroy_keys, "crisis-api may not ['Describe', 'Read', 'Write'] crisis.events.keys"),
        (_no_keys_topic, "no KafkaTopic crisis.events.keys"),
        (_keys_deleted, "KafkaTopic crisis.events.keys is not compacted"),
        (_no_audit_token, "Deployment crisis-gateway: no CRISIS_AUDIT_TOKEN"),
        (_statefulset, "hand-rolled StatefulSet"),
        (_tcp_readiness, "crisis-gateway: readiness is not /readyz"),
        (_no_budget, "crisis-gateway has no PodDisruptionBudget"),
        (_no_autoscaler, "crisis-api has no HorizontalPodAutoscaler"),
        (_no_network_policy, "has no NetworkPolicy"),
        (_ingress_without_tls, "is served without TLS"),
        (_plaintext_clients, "does not make the processes use TLS"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_each_check_fails_when_what_it_guards_is_removed(
    mutate: Callable[[Docs], None], expected: str
) -> None:
    docs = load_manifests()
    mutate(docs)
    problems = kubernetes_problems(docs)
    assert any(expected in p for p in problems), problems
