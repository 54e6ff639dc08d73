"""schemas/ is generated from the models; this fails when they drift apart."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from crisis.contracts import event_schema, render
from crisis.domain.enums import EventType

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def test_committed_schemas_match_the_models() -> None:
    expected = render()
    on_disk = {p.name: p.read_text() for p in SCHEMAS.glob("*.json")}
    stale = sorted(name for name in expected if on_disk.get(name) != expected[name])
    extra = sorted(set(on_disk) - set(expected))
    assert not stale and not extra, f"run `crisis schemas`: stale {stale}, unexpected {extra}"


def test_every_event_type_has_a_valid_schema_that_rejects_a_wrong_type() -> None:
    for event_type in EventType:
        schema = event_schema(event_type)
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        assert not validator.is_valid({"type": "something.else"})


def test_asyncapi_names_every_event_type() -> None:
    doc = json.loads((SCHEMAS / "asyncapi.json").read_text())
    assert doc["asyncapi"].startswith("3.")
    names = {m["name"] for m in doc["components"]["messages"].values()}
    assert names == {t.value for t in EventType}
    assert set(doc["channels"]) == {"events", "stream"}
