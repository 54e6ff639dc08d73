"""Reading a /metrics page the way Prometheus does, and the naming rules every family must follow."""

from __future__ import annotations

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

# Suffixes that name a unit or a derived series; a gauge or histogram named like a counter misleads.
_COUNTER_SERIES = ("_total", "_created")


def families(text: str) -> dict[str, Metric]:
    """The page's families by name; fails on anything the Prometheus text parser rejects."""
    return {f.name: f for f in text_string_to_metric_families(text)}


def naming_errors(found: dict[str, Metric]) -> list[str]:
    """Every breach of the Prometheus naming rules on a page (empty when it is clean)."""
    errors = []
    for name, family in found.items():
        samples = {s.name for s in family.samples}
        if family.type == "counter":
            bad = {s for s in samples if not s.endswith(_COUNTER_SERIES)}
            if bad:
                errors.append(f"counter {name}: samples {sorted(bad)} do not end in _total")
        elif name.endswith("_total"):
            errors.append(f"{family.type} {name} ends in _total")
        if family.type == "histogram" and not name.endswith("_seconds"):
            errors.append(f"histogram {name} has no unit suffix (_seconds)")
        if not family.documentation:
            errors.append(f"{name} has no HELP text")
    return errors


def labels(family: Metric, name: str) -> set[str]:
    """The values label `name` takes across the family's samples."""
    return {s.labels[name] for s in family.samples if name in s.labels}
