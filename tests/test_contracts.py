"""schemas/ is generated from the models and holds what third parties code against: drift, validity, and
real Kafka records read with the CloudEvents SDK's own Kafka binding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiokafka import AIOKafkaConsumer
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat

from crisis.bus.codec import decode, encode
from crisis.bus.kafka import KafkaBus
from crisis.config import Settings
from crisis.contracts import event_schema, render
from crisis.domain.enums import EventType, Tlp
from crisis.domain.envelope import Envelope
from crisis.gateway.frames import event_prefix
from tests.gateway.events import action_reported, crisis_opened, indicator_shared

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
# The official AsyncAPI 3.0.0 JSON Schema (Apache-2.0), vendored so this runs offline.
ASYNCAPI_SCHEMA = Path(__file__).resolve().parent / "vendor" / "asyncapi" / "asyncapi-3.0.0.schema.json"


def validator(event_type: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{event_type}.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def samples() -> list[Envelope]:
    crisis = crisis_opened(tlp=Tlp.RED, recipients=("bka", "vidshare"))
    shared = indicator_shared(crisis, tlp=Tlp.RED, recipients=("bka", "vidshare"))
    return [crisis, shared, action_reported(shared), indicator_shared(crisis_opened())]


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


@pytest.mark.parametrize("attribute", ["id", "specversion", "time", "source", "type", "subject"])
def test_a_structured_event_without_a_required_attribute_is_refused(attribute: str) -> None:
    env = samples()[1]
    body = json.loads(env.model_dump_json())
    assert validator(env.type).is_valid(body)
    del body[attribute]
    assert not validator(env.type).is_valid(body)


def test_stream_frames_validate_and_carry_recipients_as_one_string() -> None:
    for env in samples():
        frame = json.loads(event_prefix(env) + b'AaaumPqG1gMBAAA"}')
        assert isinstance(frame["tlprecipients"], str)
        assert frame["dataschema"] == f"https://crisis-bus.org/schemas/{env.type}.json#/properties/data"
        errors = [e.message for e in validator(env.type).iter_errors(frame)]
        assert not errors, errors


def test_an_array_of_recipients_is_refused_by_the_schema_and_still_read_by_the_envelope() -> None:
    env = samples()[0]
    old = json.loads(env.model_dump_json()) | {"tlprecipients": ["bka", "vidshare"]}
    assert not validator(env.type).is_valid(old)
    # Frames written before the recipients became a string still decode.
    assert Envelope.model_validate(old).tlprecipients == ("bka", "vidshare")


def test_a_record_written_before_dataschema_and_the_string_form_still_decodes() -> None:
    env = samples()[0]
    record = encode(env)
    older = [(k, v) for k, v in record.headers if k != "ce_dataschema"]
    assert decode(record.value, older) == env


def test_asyncapi_validates_against_the_official_asyncapi_3_schema() -> None:
    official = json.loads(ASYNCAPI_SCHEMA.read_text())
    doc = json.loads((SCHEMAS / "asyncapi.json").read_text())
    checker = jsonschema.Draft7Validator(official)
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in checker.iter_errors(doc)]
    assert not errors, errors
    broken = json.loads(json.dumps(doc))
    broken["operations"]["consumeEvents"]["action"] = "consume"
    assert not checker.is_valid(broken)


def test_asyncapi_describes_the_kafka_binding_and_every_stream_and_sse_message() -> None:
    doc = json.loads((SCHEMAS / "asyncapi.json").read_text())
    messages = doc["components"]["messages"]
    for t in EventType:
        kafka = messages[f"kafka_{t.name.lower()}"]
        assert kafka["payload"] == {"$ref": f"./{t.value}.json#/properties/data"}
        assert kafka["headers"]["properties"]["ce_type"] == {"const": t.value}
        assert "key" in kafka["bindings"]["kafka"]
    control = {"subscribed", "state", "gap", "closing"}
    stream = set(doc["channels"]["stream"]["messages"])
    sse = set(doc["channels"]["events-sse"]["messages"])
    events = {f"event_{t.name.lower()}" for t in EventType}
    assert stream == events | control | {"auth", "subscribe"}
    assert sse == events | control
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["channels"]["events-sse"]["address"] == "/v1/events"


def test_openapi_has_a_bearer_scheme_typed_batch_items_and_readable_operation_ids() -> None:
    doc = json.loads((SCHEMAS / "openapi.json").read_text())
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    operations = [op for ops in doc["paths"].values() for op in ops.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    assert all("_v1_" not in i and not i.endswith(("_get", "_post")) for i in ids), ids
    assert doc["paths"]["/v1/crises"]["post"]["operationId"] == "open_crisis"
    assert doc["paths"]["/v1/crises"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in doc["paths"]["/livez"]["get"]
    items = doc["components"]["schemas"]["IndicatorBatch"]["properties"]["indicators"]["items"]
    assert items == {"$ref": "#/components/schemas/IndicatorIn"}
    assert "kind" in doc["components"]["schemas"]["IndicatorIn"]["properties"]


@pytest.mark.kafka
async def test_real_kafka_records_decode_with_the_cloudevents_sdk_and_validate(settings: Settings) -> None:
    sent = samples()
    async with KafkaBus(settings) as bus:
        await bus.publish(sent)
    records = await read_all(settings, len(sent))
    assert {r.key for r in records} == {e.subject.encode() for e in sent}
    fmt = JSONFormat()
    by_id = {e.id: e for e in sent}
    for record in records:
        message = ce_kafka.KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
        event = ce_kafka.from_binary(message, fmt)  # the SDK's own CloudEvent, not ours
        structured: dict[str, Any] = json.loads(fmt.write(event))
        assert structured["partitionkey"] == structured["subject"]
        errors = [e.message for e in validator(structured["type"]).iter_errors(structured)]
        assert not errors, errors
        # ...and what the SDK wrote reads back as the event that was sent.
        assert Envelope.model_validate(structured) == by_id[structured["id"]]


async def read_all(settings: Settings, count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        settings.kafka_topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        got: list[Any] = []
        while len(got) < count:
            batches = await consumer.getmany(timeout_ms=1000)
            got += [r for batch in batches.values() for r in batch]
        return got
    finally:
        await consumer.stop()
