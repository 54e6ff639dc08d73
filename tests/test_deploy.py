"""The Kubernetes manifest probes each process on the paths it serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

MANIFEST = Path(__file__).resolve().parents[1] / "deploy" / "k8s" / "crisis-bus.yaml"


def deployments() -> dict[str, dict[str, Any]]:
    docs = yaml.safe_load_all(MANIFEST.read_text())
    return {d["metadata"]["name"]: d for d in docs if d and d["kind"] == "Deployment"}


@pytest.mark.parametrize("name", ["crisis-api", "crisis-gateway"])
def test_probes_use_livez_and_readyz_on_the_served_port(name: str) -> None:
    template = deployments()[name]["spec"]["template"]
    [container] = template["spec"]["containers"]
    [port] = container["ports"]
    probes = {kind: container[f"{kind}Probe"]["httpGet"] for kind in ("startup", "readiness", "liveness")}
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startup": "/livez",
        "readiness": "/readyz",
        "liveness": "/livez",
    }
    assert {probe["port"] for probe in probes.values()} == {port["name"]}
    assert str(port["containerPort"]) == template["metadata"]["annotations"]["prometheus.io/port"]
    assert str(port["containerPort"]) in container["args"]  # the process listens where it is probed
