"""Checks of the deployment files, offline: their schemas, and what a schema cannot see.

Each check returns the problems it found as sentences (empty: none), so a test can show them all and a
mutated copy of a file can be shown to produce the one problem expected.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from kubernetes_validate import utils as kubernetes

ROOT = Path(__file__).resolve().parents[2]
VENDOR = Path(__file__).resolve().parents[1] / "vendor"
KUBERNETES_VERSION = "1.33"  # the oldest Kubernetes the manifests are meant for
BROKER_DATA = "/var/lib/kafka/data"  # log.dirs in deploy/kafka/broker.sh
SECURE = {"SSL", "SASL_SSL"}

# The files the compose deployment reads besides docker-compose.yml, by path from the repository root.
COMPOSE_FILES = ("deploy/kafka/broker.sh", "deploy/topics.sh", "deploy/kafka-acls.sh", "deploy/Caddyfile")


def load_compose() -> tuple[dict[str, Any], dict[str, str]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose, {name: (ROOT / name).read_text() for name in COMPOSE_FILES}


def load_manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


# ------------------------------------------------------------------------------------------------ compose


@cache
def _compose_schema() -> jsonschema.Draft7Validator:
    schema = json.loads((VENDOR / "compose-spec" / "compose-spec.json").read_text())
    return jsonschema.Draft7Validator(schema)


def compose_schema_problems(compose: Mapping[str, Any]) -> list[str]:
    # best_match descends into oneOf/anyOf alternatives to the error that names the field.
    errors = (jsonschema.exceptions.best_match([e]) for e in _compose_schema().iter_errors(compose))
    return [f"docker-compose.yml {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors if e]


def _brokers(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose.get("services", {}).items()
        if str(service.get("image", "")).startswith("apache/kafka")
        and "NODE_ID" in service.get("environment", {})
    }


def _crisis(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: s
        for name, s in compose.get("services", {}).items()
        if "build" in s or "crisis" in str(s.get("image"))
    }


def valid_cluster_id(value: object) -> bool:
    """KRaft's cluster id: 16 bytes in URL-safe base64 without padding, 22 characters."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]{22}", value):
        return False
    try:
        return len(base64.urlsafe_b64decode(value + "==")) == 16
    except (binascii.Error, ValueError):
        return False


def compose_problems(compose: Mapping[str, Any], files: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    brokers = _brokers(compose)
    if len(brokers) < 3:
        problems.append(f"{len(brokers)} Kafka brokers: replication 3 needs at least 3")
    declared = set(compose.get("volumes") or {})
    ids = set()
    for name, broker in brokers.items():
        mounts = [
            str(v) if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}"
            for v in broker.get("volumes", [])
        ]
        data = [m.split(":")[0] for m in mounts if m.split(":")[1:2] == [BROKER_DATA]]
        if not data or data[0] not in declared:
            problems.append(
                f"{name} keeps its log outside a named volume at {BROKER_DATA}: it dies with the container"
            )
        cluster_id = broker.get("environment", {}).get("CLUSTER_ID")
        if not valid_cluster_id(cluster_id):
            problems.append(f"{name}: CLUSTER_ID {cluster_id!r} is not a 22-character base64 UUID")
        ids.add(cluster_id)
        if "healthcheck" not in broker:
            problems.append(f"{name} has no health check")
        for key, value in broker.get("environment", {}).items():
            if "PLAINTEXT" in str(value):
                problems.append(f"{name}: {key} names a PLAINTEXT listener")
    if len(ids) > 1:
        problems.append(f"the brokers disagree on CLUSTER_ID: {sorted(map(str, ids))}")

    broker_config = files["deploy/kafka/broker.sh"]
    protocol_map = re.search(r"^listener\.security\.protocol\.map=(.*)$", broker_config, re.M)
    if protocol_map is None:
        problems.append("deploy/kafka/broker.sh sets no listener.security.protocol.map")
    else:
        for entry in protocol_map.group(1).split(","):
            listener, _, protocol = entry.partition(":")
            if protocol not in SECURE:
                problems.append(f"deploy/kafka/broker.sh: listener {listener} speaks {protocol}, not TLS")
    if not re.search(r"^allow\.everyone\.if\.no\.acl\.found=false$", broker_config, re.M):
        problems.append("deploy/kafka/broker.sh does not refuse what no ACL allows")

    crisis = _crisis(compose)
    users = {}
    for name, service in crisis.items():
        env = service.get("environment", {})
        if env.get("CRISIS_KAFKA_SECURITY_PROTOCOL") not in SECURE:
            problems.append(f"{name}: CRISIS_KAFKA_SECURITY_PROTOCOL is not SSL or SASL_SSL")
        if env.get("CRISIS_ENVIRONMENT") != "production":
            problems.append(f"{name} does not run with CRISIS_ENVIRONMENT=production")
        if not env.get("CRISIS_KAFKA_SSL_CA_FILE"):
            problems.append(f"{name}: no CRISIS_KAFKA_SSL_CA_FILE to verify the brokers with")
        users[name] = env.get("CRISIS_KAFKA_SASL_USERNAME")
        check = " ".join(map(str, (service.get("healthcheck") or {}).get("test", [])))
        if "/readyz" not in check:
            problems.append(f"{name} has no /readyz health check")
        if service.get("ports"):
            problems.append(f"{name} publishes a port: clients must come through the TLS proxy")
    if len(set(users.values())) < len(users):
        problems.append(f"the API and the gateway share a Kafka principal: {users}")

    proxies = [
        s for s in compose.get("services", {}).values() if any("443" in str(p) for p in s.get("ports", []))
    ]
    if not proxies:
        problems.append("no TLS proxy publishes port 443")
    if not re.search(r"^\s*tls\s", files["deploy/Caddyfile"], re.M):
        problems.append("deploy/Caddyfile serves no certificate (tls)")

    topics = shell_topics(files["deploy/topics.sh"])
    for name in TOPICS:
        if name not in topics:
            problems.append(f"deploy/topics.sh does not create {name}")
    for name, config in topics.items():
        if config.get("replication-factor") != "3":
            problems.append(f"deploy/topics.sh: the topic {name} is not replicated 3 times")
        if config.get("min.insync.replicas") != "2":
            problems.append(f"deploy/topics.sh: the topic {name} does not set min.insync.replicas=2")
    if KEYS_TOPIC in topics and topics[KEYS_TOPIC].get("cleanup.policy") != "compact":
        problems.append(f"deploy/topics.sh: {KEYS_TOPIC} is not compacted (a destroyed key would stay)")
    problems += acl_problems("deploy/kafka-acls.sh", shell_acls(files["deploy/kafka-acls.sh"]))
    for name in ("api", "gateway"):
        env = compose.get("services", {}).get(name, {}).get("environment", {})
        if not (env.get("CRISIS_AUDIT_TOKEN_FILE") or env.get("CRISIS_AUDIT_TOKEN")):
            problems.append(f"{name}: no CRISIS_AUDIT_TOKEN_FILE (the gateway's read audit reaches no log)")
    return problems


# ------------------------------------------------------------------------------------------------ kafka

TOPIC = "crisis.events"
KEYS_TOPIC = "crisis.events.keys"
TOPICS = (TOPIC, KEYS_TOPIC)
# What each principal must be granted on each topic; the gateway nothing more (it only reads).
GRANTS = {"crisis-api": {"Write", "Read", "Describe"}, "crisis-gateway": {"Read", "Describe"}}


def _shell_defaults(script: str) -> dict[str, str]:
    """The script's `NAME="${NAME:-default}"` defaults, earlier ones expanded in later ones."""
    values: dict[str, str] = {}
    for name, default in re.findall(r'^(\w+)="\$\{\1:-([^}]*)\}"', script, re.M):
        values[name] = _expand(default, values)
    return values


def _expand(text: str, values: Mapping[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), text.strip('"'))


def shell_topics(script: str) -> dict[str, dict[str, str]]:
    """Each topic deploy/topics.sh creates, with its flags and --config values."""
    values = _shell_defaults(script)
    found: dict[str, dict[str, str]] = {}
    for command in re.split(r"kafka-topics\.sh", script.replace("\\\n", " "))[1:]:
        flags = dict(re.findall(r"--([\w-]+) (\S+)", command))
        config = dict(re.findall(r"--config ([\w.]+)=(\S+)", command))
        if "topic" in flags:
            found[_expand(flags["topic"], values)] = {**flags, **config}
    return found


def shell_acls(script: str) -> dict[tuple[str, str], set[str]]:
    """(principal, topic) -> the operations deploy/kafka-acls.sh grants."""
    values = _shell_defaults(script)
    grants: dict[tuple[str, str], set[str]] = {}
    for line in script.splitlines():
        principal = re.search(r"--allow-principal User:([\w-]+)", line)
        topic = re.search(r"--topic (\S+)", line)
        if principal and topic:
            key = (principal.group(1), _expand(topic.group(1), values))
            grants.setdefault(key, set()).update(re.findall(r"--operation (\w+)", line))
    return grants


def acl_problems(where: str, grants: Mapping[tuple[str, str], set[str]]) -> list[str]:
    problems = []
    for (principal, topic), ops in sorted(grants.items()):
        if principal == "crisis-gateway" and ops - GRANTS[principal]:
            problems.append(f"{where} lets the gateway change {topic}: {sorted(ops - GRANTS[principal])}")
    for principal, needed in GRANTS.items():
        for topic in TOPICS:
            missing = needed - grants.get((principal, topic), set())
            if missing:
                problems.append(f"{where}: {principal} may not {sorted(missing)} {topic}")
    return problems


# ------------------------------------------------------------------------------------------------ kubernetes


def _strict(schema: Any) -> Any:
    """The CRD schema refusing fields it does not name, as the API server's strict field validation does."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def _crd_schemas() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    found = {}
    for path in (VENDOR / "strimzi").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                schema["properties"].setdefault("apiVersion", {"type": "string"})
                schema["properties"].setdefault("kind", {"type": "string"})
                found[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(_strict(schema))
    return found


def kubernetes_schema_problems(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    problems = []
    for doc in docs:
        name = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        crd = _crd_schemas().get((str(doc.get("apiVersion")), str(doc.get("kind"))))
        if crd is not None:
            problems += [
                f"{name} {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in crd.iter_errors(doc)
            ]
            continue
        try:
            kubernetes.validate(dict(doc), KUBERNETES_VERSION, strict=True)
        except kubernetes.SchemaNotFoundError:
            problems.append(
                f"{name}: no schema for {doc.get('apiVersion')} in Kubernetes {KUBERNETES_VERSION} or Strimzi"
            )
        except kubernetes.ValidationError as exc:
            problems.append(f"{name}: {exc.message}")
    return problems


def _of(docs: Iterable[Mapping[str, Any]], kind: str) -> dict[str, Mapping[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def kubernetes_problems(docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    if _of(docs, "StatefulSet"):
        problems.append("a hand-rolled StatefulSet: Kafka runs through the Strimzi operator")
    for kind in ("Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"):
        if not _of(docs, kind):
            problems.append(f"no Strimzi {kind}")

    brokers = 0
    for name, pool in _of(docs, "KafkaNodePool").items():
        spec = pool["spec"]
        if "broker" in spec.get("roles", []):
            brokers += int(spec.get("replicas", 0))
        storage = spec.get("storage", {})
        volumes = storage.get("volumes", []) if storage.get("type") == "jbod" else [storage]
        if not volumes or any(v.get("type") != "persistent-claim" for v in volumes):
            problems.append(f"KafkaNodePool {name} keeps its log on ephemeral storage")
        if any(v.get("deleteClaim") for v in volumes):
            problems.append(f"KafkaNodePool {name} deletes its volumes with the cluster")
    if brokers < 3:
        problems.append(f"{brokers} Kafka brokers: replication 3 needs at least 3")

    for name, kafka in _of(docs, "Kafka").items():
        spec = kafka["spec"]["kafka"]
        for listener in spec.get("listeners", []):
            if not listener.get("tls"):
                problems.append(f"Kafka {name}: listener {listener.get('name')} does not use TLS")
            if not listener.get("authentication"):
                problems.append(f"Kafka {name}: listener {listener.get('name')} authenticates nobody")
        if not spec.get("authorization"):
            problems.append(f"Kafka {name} enforces no ACLs (authorization)")
        if int(spec.get("config", {}).get("min.insync.replicas", 1)) < 2:
            problems.append(f"Kafka {name}: min.insync.replicas below 2")

    for name, topic in _of(docs, "KafkaTopic").items():
        spec = topic["spec"]
        if spec.get("replicas") != 3:
            problems.append(f"KafkaTopic {name}: replicas {spec.get('replicas')}, not 3")
        if int(spec.get("config", {}).get("min.insync.replicas", 0)) != 2:
            problems.append(f"KafkaTopic {name}: min.insync.replicas is not 2")
    kafka_topics = {
        t["spec"].get("topicName", name): t["spec"] for name, t in _of(docs, "KafkaTopic").items()
    }
    for name in TOPICS:
        if name not in kafka_topics:
            problems.append(f"no KafkaTopic {name}")
    if kafka_topics.get(KEYS_TOPIC, {}).get("config", {}).get("cleanup.policy", "compact") != "compact":
        problems.append(f"KafkaTopic {KEYS_TOPIC} is not compacted (a destroyed key would stay)")

    users = _of(docs, "KafkaUser")
    for user in ("crisis-api", "crisis-gateway"):
        if user not in users:
            problems.append(f"no KafkaUser {user}")
    gateway_ops = {
        op
        for acl in users.get("crisis-gateway", {}).get("spec", {}).get("authorization", {}).get("acls", [])
        for op in acl.get("operations", [])
    }
    if gateway_ops - {"Read", "Describe"}:
        problems.append(
            f"KafkaUser crisis-gateway may {sorted(gateway_ops - {'Read', 'Describe'})}: it only reads"
        )
    grants: dict[tuple[str, str], set[str]] = {}
    for user, spec in users.items():
        for acl in spec.get("spec", {}).get("authorization", {}).get("acls", []):
            resource = acl.get("resource", {})
            if resource.get("type") == "topic":
                key = (user, resource.get("name", ""))
                grants.setdefault(key, set()).update(acl.get("operations", []))
    problems += acl_problems("the KafkaUsers", grants)

    config = {k: v for cm in _of(docs, "ConfigMap").values() for k, v in cm.get("data", {}).items()}
    if config.get("CRISIS_KAFKA_SECURITY_PROTOCOL") not in SECURE:
        problems.append("the ConfigMap does not make the processes use TLS to Kafka")

    deployments = _of(docs, "Deployment")
    budgets = [
        d["spec"]["selector"].get("matchLabels", {}) for d in _of(docs, "PodDisruptionBudget").values()
    ]
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in _of(docs, "HorizontalPodAutoscaler").values()}
    policies = list(_of(docs, "NetworkPolicy").values())
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        if not {e["name"] for e in container.get("env", [])} & {
            "CRISIS_AUDIT_TOKEN",
            "CRISIS_AUDIT_TOKEN_FILE",
        }:
            problems.append(
                f"Deployment {name}: no CRISIS_AUDIT_TOKEN (the gateway's read audit reaches no log)"
            )
        if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            problems.append(f"Deployment {name}: readiness is not /readyz")
        if not any(b and b.items() <= labels.items() for b in budgets):
            problems.append(f"Deployment {name} has no PodDisruptionBudget")
        if name not in scaled:
            problems.append(f"Deployment {name} has no HorizontalPodAutoscaler")
        if not any(_selects(p["spec"]["podSelector"], labels) for p in policies):
            problems.append(f"Deployment {name} has no NetworkPolicy")

    ingresses = list(_of(docs, "Ingress").values())
    if not ingresses:
        problems.append("no Ingress")
    for ingress in ingresses:
        covered = {h for tls in ingress["spec"].get("tls", []) for h in tls.get("hosts", [])}
        for rule in ingress["spec"].get("rules", []):
            if rule.get("host") not in covered:
                problems.append(
                    f"Ingress {ingress['metadata']['name']}: {rule.get('host')} is served without TLS"
                )
        routes = {
            p["path"]: p["backend"]["service"]["name"]
            for rule in ingress["spec"].get("rules", [])
            for p in rule.get("http", {}).get("paths", [])
        }
        if routes.get("/v1/stream") != "crisis-gateway":
            problems.append("the Ingress does not send /v1/stream (WebSocket) to the gateway")
    return problems


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return True
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        if expression["operator"] == "In" and value not in expression["values"]:
            return False
        if expression["operator"] == "NotIn" and value in expression["values"]:
            return False
        if expression["operator"] == "Exists" and value is None:
            return False
    return True
