"""The published contracts, generated from the models: JSON Schema per event type, AsyncAPI 3.0, OpenAPI.

`crisis schemas` writes them to schemas/; tests/test_contracts.py fails when the committed files drift.
Each event type's JSON Schema describes the structured CloudEvent (as the WebSocket and SSE deliver it, and
as the CloudEvents SDK writes one it decoded from Kafka); the AsyncAPI document describes the Kafka binary
binding (key, `ce_` headers, `data` as the value) and every message of the stream and of SSE.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from crisis import __version__
from crisis.domain.crisis import CrisisState
from crisis.domain.enums import EventType, IndicatorKind, Mode, Role, Tlp
from crisis.domain.envelope import SCHEMA_BASE, Envelope
from crisis.domain.events import EVENT_DATA

# What CloudEvents 1.0 requires, then what every crisis-bus event carries.
REQUIRED = [
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "datacontenttype",
    "tlp",
    "mode",
    "data",
]
# Organisation names joined by commas: a CloudEvents extension value is a scalar, in every binding.
RECIPIENTS = {
    "type": "string",
    "pattern": r"^([a-z0-9][a-z0-9.+_-]*(,[a-z0-9][a-z0-9.+_-]*)*)?$",
    "title": "Tlprecipients",
    "description": "Organisations that may read a RED or AMBER+STRICT event, comma-separated (a CloudEvents "
    "extension is a scalar); empty or absent when none are named.",
}
CURSOR = {
    "type": "string",
    "title": "Cursor",
    "description": "Added by the gateway on delivery: resume the stream right after this event.",
}


def event_schema(event_type: EventType) -> dict[str, Any]:
    """The envelope with `type` fixed and `data` replaced by this event type's data model."""
    envelope = Envelope.model_json_schema(mode="serialization")
    data = EVENT_DATA[event_type].model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
    defs = {**envelope.pop("$defs", {}), **data.pop("$defs", {})}
    props = envelope["properties"]
    props["type"] = {"const": event_type.value, "title": "Type"}
    props["data"] = data
    props["tlprecipients"] = RECIPIENTS
    props["dataschema"] = {**props["dataschema"], "format": "uri"}
    props["partitionkey"] = {
        "type": "string",
        "title": "Partitionkey",
        "description": "Set by the CloudEvents Kafka binding from the record key: the crisis id (= subject).",
    }
    props["cursor"] = CURSOR
    envelope.update(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{SCHEMA_BASE}{event_type.value}.json",
            "title": event_type.value,
            "required": REQUIRED,
            "$defs": defs,
        }
    )
    return envelope


SUMMARIES: dict[EventType, str] = {
    EventType.CRISIS_OPENED: "A crisis opened in monitoring (early warning).",
    EventType.CRISIS_ACTIVATED: "A crisis activated at a level, with the criteria met.",
    EventType.CRISIS_LEVEL_CHANGED: "An activated crisis moved to another level.",
    EventType.CRISIS_CONCLUDED: "A crisis stood down; late indicators are still accepted.",
    EventType.CRISIS_CLOSED: "A crisis closed after its debrief; nothing more is accepted.",
    EventType.INDICATOR_SHARED: "A new indicator; `data.indicator_id` is the id to acknowledge.",
    EventType.INDICATOR_SIGHTED: "An indicator shared again within the same audience; `data.indicator_id` "
    "names the existing indicator (the id to acknowledge), `data.sighted_by` who saw it again.",
    EventType.INDICATOR_RETRACTED: "An indicator withdrawn by its sharer or a coordinator.",
    EventType.ACTION_REPORTED: "A provider's receipt or outcome for one indicator.",
    EventType.CRISIS_CLOCK_CHANGED: "A coordinator changed the crisis's roster of expected providers or "
    "its receipt and action deadlines.",
    EventType.CLOCK_OVERDUE: "An expected provider let a receipt or action deadline pass for one indicator; "
    "written once, for coordinators and that provider; its late answer withdraws it.",
    EventType.DISPUTE_RESOLVED: "A dispute (opened by a provider's `disagree`) confirmed or retracted by the "
    "indicator's sharer or the hub; addressed to the indicator's audience. `retracted` withdraws the "
    "indicator and asks every provider that acted on it to reinstate the content (action outcome "
    "`reinstated`).",
    EventType.AUDIT_READS: "One process's read audit for one period: reads of indicators, exports and "
    "reports counted per organisation, key, crisis and kind, and its stream subscriptions with their "
    "filters and cursors. Written by the servers (TLP:RED, no recipient: on no stream).",
    EventType.INDICATOR_ERASED: "A coordinator erased one indicator's value, context and notes (its key is "
    "destroyed): every event about it now reads `erased: true` with those fields null or empty.",
    EventType.CRISIS_ERASED: "A coordinator erased the crisis's free text (summary and reasons).",
    EventType.CRISIS_RETENTION_EXPIRED: "The crisis's retention after closure ended: every key of the crisis "
    "is destroyed; counts, kinds, times and outcomes remain. Written once, by the clock.",
}


def _string(description: str, **more: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **more}


def kafka_headers(event_type: EventType) -> dict[str, Any]:
    """The CloudEvents Kafka binary binding: each attribute a `ce_` header (UTF-8), `content-type` for
    `datacontenttype`. Headers absent from older records: `ce_dataschema`, `ce_role`, `ce_idempotency`,
    `ce_chainprev`, `ce_chainhash`."""
    props = {
        "ce_specversion": {"const": "1.0"},
        "ce_id": _string("Event id; the same id twice is one event (a retried write)."),
        "ce_source": _string("/orgs/{org}/keys/{key id}: who wrote it."),
        "ce_type": {"const": event_type.value},
        "ce_time": _string("When it happened (RFC 3339, UTC).", format="date-time"),
        "ce_subject": _string("The crisis id (also the record key)."),
        "content-type": {"const": "application/json"},
        "ce_dataschema": _string("The JSON Schema of the value.", format="uri"),
        "ce_tlp": {"enum": [t.value for t in Tlp]},
        "ce_mode": {"enum": [m.value for m in Mode]},
        "ce_tlprecipients": {k: v for k, v in RECIPIENTS.items() if k != "title"},
        "ce_role": {"enum": [r.value for r in Role], "description": "The writing key's role."},
        "ce_idempotency": _string("`<scope>.<digest>` of a write sent with an Idempotency-Key."),
        "ce_chainprev": _string(
            "The `chainhash` of the previous event of the crisis's hash chain (64 zeros for its first).",
            pattern="^[0-9a-f]{64}$",
        ),
        "ce_chainhash": _string(
            "SHA-256 of the event's canonical JSON as published, itself left out (docs/safeguards.md).",
            pattern="^[0-9a-f]{64}$",
        ),
    }
    required = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject"]
    required += ["content-type", "ce_tlp", "ce_mode"]
    return {"type": "object", "properties": props, "required": required}


KAFKA_KEY = _string("The crisis id: all events of one crisis share a partition, hence one order.")
_QUERY = {
    "crisis": _string("Comma-separated crisis ids (at most 100); default all."),
    "type": _string("Comma-separated event types; `crisis.*` is every crisis type; default all."),
    "kind": _string("Comma-separated indicator kinds."),
    "mode": {"type": "string", "enum": ["live", "exercise", "both"], "default": "live"},
    "cursor": _string("Resume right after the event that carried this cursor."),
}


def _filter_schema() -> dict[str, Any]:
    strings = {"type": ["array", "null"], "items": {"type": "string"}}
    return {
        "type": "object",
        "properties": {
            "crises": strings,
            "types": strings,
            "kinds": {"type": ["array", "null"], "items": {"enum": [k.value for k in IndicatorKind]}},
            "mode": {"enum": ["live", "exercise", "both"]},
        },
    }


def control_schemas() -> dict[str, dict[str, Any]]:
    """The stream's control messages (`type` without a dot) and the client's messages."""
    cursor_or_null = {"type": ["string", "null"]}
    crisis = CrisisState.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
    return {
        "subscribed": {
            "type": "object",
            "required": ["type", "filter", "org", "role", "cursor"],
            "properties": {
                "type": {"const": "subscribed"},
                "filter": _filter_schema(),
                "org": {"type": "string"},
                "role": {"enum": [r.value for r in Role]},
                "cursor": _string("The cut the stream continues after."),
            },
        },
        "state": {
            "type": "object",
            "required": ["type", "crisis", "cursor"],
            "properties": {"type": {"const": "state"}, "crisis": crisis, "cursor": {"type": "string"}},
        },
        "gap": {
            "type": "object",
            "required": ["type", "reason", "missing", "detail", "cursor"],
            "properties": {
                "type": {"const": "gap"},
                "reason": {"enum": ["retention", "foreign_cursor", "beyond_end"]},
                "missing": {
                    "type": ["array", "null"],
                    "items": {
                        "type": "object",
                        "required": ["partition", "from", "to"],
                        "properties": {p: {"type": "integer"} for p in ("partition", "from", "to")},
                    },
                },
                "detail": {"type": "string"},
                "cursor": _string("Where the stream continues from."),
            },
        },
        "closing": {
            "type": "object",
            "required": ["type", "code", "reason", "cursor"],
            "properties": {
                "type": {"const": "closing"},
                "code": {"type": "integer", "description": "4008 slow consumer, 1001 going away, 1011, 1008"},
                "reason": {"type": "string"},
                "cursor": cursor_or_null,
            },
        },
        "auth": {
            "type": "object",
            "required": ["type", "token"],
            "properties": {
                "type": {"const": "auth"},
                "token": _string("The API key (browsers, which cannot send a header)."),
                **_subscription_fields(),
            },
            "additionalProperties": False,
        },
        "subscribe": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"const": "subscribe"}, **_subscription_fields()},
            "additionalProperties": False,
        },
    }


def _subscription_fields() -> dict[str, Any]:
    strings = {"type": "array", "items": {"type": "string"}}
    return {
        "crises": strings,
        "types": strings,
        "kinds": strings,
        "mode": {"enum": ["live", "exercise", "both"]},
        "cursor": {"type": "string"},
    }


_CONTROL_SUMMARIES = {
    "subscribed": "First message of every subscription: the filter as understood and the starting cursor.",
    "state": "Without a cursor: one per matching crisis the key may read, as it stands now.",
    "gap": "Events the client should have had but cannot (retention, another log, beyond the end).",
    "closing": "Just before the stream closes (slow consumer, shutdown, error, revoked key): its cursor.",
    "auth": "Client: the first message of a connection without an Authorization header.",
    "subscribe": "Client: replaces the subscription at any time.",
}


CONTROL_OUT = ["subscribed", "state", "gap", "closing"]
CLIENT_IN = ["auth", "subscribe"]
_BEARER = [{"$ref": "#/components/securitySchemes/bearer"}]


def asyncapi(topic: str = "crisis.events") -> dict[str, Any]:
    kafka, structured = _kafka_messages(), _structured_messages()
    schemas = control_schemas()
    crisis_defs = cast(dict[str, Any], schemas["state"]["properties"]["crisis"]).pop("$defs", {})
    control = _control_messages(schemas)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "crisis-bus events",
            "version": __version__,
            "description": "Crisis events as CloudEvents 1.0 with the extensions tlp, tlprecipients (a "
            "comma-separated string), mode, role (the writing key's role) and idempotency (a retried "
            "request's fingerprint). On Kafka in binary content mode: the record key is the crisis id, the "
            "attributes are `ce_` headers and the value is `data`. On the WebSocket stream and over SSE in "
            "structured mode with a resumable `cursor`, beside control messages.",
        },
        "servers": _servers(),
        "channels": _channels(topic, list(kafka), [*structured, *CONTROL_OUT]),
        "operations": _operations(list(kafka), [*structured, *CONTROL_OUT]),
        "components": {
            "messages": {**kafka, **structured, **control},
            "schemas": {**schemas, **crisis_defs},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from `crisis keys add`, as `Authorization: Bearer <key>`.",
                }
            },
        },
    }


def _kafka_messages() -> dict[str, Any]:
    """Binary mode: the key, the `ce_` headers, and `data` as the record's value."""
    return {
        f"kafka_{t.name.lower()}": {
            "name": t.value,
            "title": f"{t.value} (Kafka record)",
            "summary": SUMMARIES[t],
            "contentType": "application/json",
            "headers": kafka_headers(t),
            "payload": {"$ref": f"./{t.value}.json#/properties/data"},
            "bindings": {"kafka": {"key": KAFKA_KEY, "bindingVersion": "0.5.0"}},
        }
        for t in EventType
    }


def _structured_messages() -> dict[str, Any]:
    return {
        f"event_{t.name.lower()}": {
            "name": t.value,
            "title": t.value,
            "summary": SUMMARIES[t],
            "contentType": "application/cloudevents+json",
            "payload": {"$ref": f"./{t.value}.json"},
        }
        for t in EventType
    }


def _control_messages(schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {
            "name": name,
            "title": name,
            "summary": _CONTROL_SUMMARIES[name],
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
        for name in schemas
    }


def _servers() -> dict[str, Any]:
    return {
        "kafka": {
            "host": "localhost:9092",
            "protocol": "kafka",
            "description": "The event log (Apache Kafka, or the embedded broker of `crisis up`). Only "
            "the API processes write to it; readers are the gateway, the ledger and trusted consumers.",
        },
        "gateway": {
            "host": "localhost:8001",
            "protocol": "ws",
            "description": "The live stream (WebSocket).",
            "security": _BEARER,
        },
        "gatewayHttp": {
            "host": "localhost:8001",
            "protocol": "http",
            "description": "The live stream as Server-Sent Events (text/event-stream).",
            "security": _BEARER,
        },
    }


def _channels(topic: str, kafka: list[str], server_out: list[str]) -> dict[str, Any]:
    return {
        "events": {
            "address": topic,
            "servers": [{"$ref": "#/servers/kafka"}],
            "messages": _own(kafka),
            "bindings": {"kafka": {"topic": topic, "bindingVersion": "0.5.0"}},
        },
        "stream": {
            "address": "/v1/stream",
            "description": "Subprotocol cloudevents.json; one JSON text frame per message.",
            "servers": [{"$ref": "#/servers/gateway"}],
            "messages": _own([*server_out, *CLIENT_IN]),
            "bindings": {
                "ws": {
                    "method": "GET",
                    "query": {"type": "object", "properties": _QUERY},
                    "headers": {
                        "type": "object",
                        "properties": {"Authorization": _string("Bearer <key>; browsers send `auth`.")},
                    },
                    "bindingVersion": "0.1.0",
                }
            },
        },
        "events-sse": {
            "address": "/v1/events",
            "description": "Server-Sent Events with the stream's query parameters. CloudEvents are "
            "`message` events whose `id` is their cursor; control messages name their type in `event`. "
            "Resume with `Last-Event-ID: <cursor>`.",
            "servers": [{"$ref": "#/servers/gatewayHttp"}],
            "messages": _own(server_out),
        },
    }


def _operations(kafka: list[str], server_out: list[str]) -> dict[str, Any]:
    def operation(action: str, channel: str, names: list[str], **more: str) -> dict[str, Any]:
        return {
            "action": action,
            **more,
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{n}"} for n in names],
        }

    return {
        "publishEvents": operation(
            "send", "events", kafka, summary="The API appends events after validating them against the log."
        ),
        "consumeEvents": operation("receive", "events", kafka),
        "receiveStream": operation("receive", "stream", server_out),
        "sendStreamRequests": operation("send", "stream", CLIENT_IN),
        "receiveEventsOverSse": operation("receive", "events-sse", server_out),
    }


def _own(names: list[str]) -> dict[str, Any]:
    """A channel's messages, each a reference to the one definition in components."""
    return {n: {"$ref": f"#/components/messages/{n}"} for n in names}


def openapi() -> dict[str, Any]:
    """The HTTP API's OpenAPI document, as `/openapi.json` serves it."""
    from crisis.api.app import create_app  # the web framework only for this file
    from crisis.config import Settings

    app = create_app(Settings(), cast(Any, None), cast(Any, None))
    return app.openapi()


def render() -> dict[str, str]:
    """File name -> content, deterministic, for writing and for the drift test."""
    files = {f"{t.value}.json": event_schema(t) for t in EventType}
    files["asyncapi.json"] = asyncapi()
    files["openapi.json"] = openapi()
    return {name: json.dumps(doc, indent=2, sort_keys=True) + "\n" for name, doc in files.items()}


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = out / name
        path.write_text(text)
        written.append(path)
    return written
