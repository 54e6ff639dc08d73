"""The published contracts, generated from the models: JSON Schema per event type, AsyncAPI 3.0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crisis import __version__
from crisis.domain.enums import EventType
from crisis.domain.envelope import Envelope
from crisis.domain.events import EVENT_DATA

SCHEMA_BASE = "https://crisis-bus.org/schemas/"


def event_schema(event_type: EventType) -> dict[str, Any]:
    """The envelope with `type` fixed and `data` replaced by this event type's data model."""
    envelope = Envelope.model_json_schema(mode="serialization")
    data = EVENT_DATA[event_type].model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
    defs = {**envelope.pop("$defs", {}), **data.pop("$defs", {})}
    props = envelope["properties"]
    props["type"] = {"const": event_type.value, "title": "Type"}
    props["data"] = data
    props["cursor"] = {
        "type": "string",
        "title": "Cursor",
        "description": "Added by the gateway on delivery: resume the stream right after this event.",
    }
    envelope.update(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{SCHEMA_BASE}{event_type.value}.json",
            "title": event_type.value,
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
}


def asyncapi(topic: str = "crisis.events") -> dict[str, Any]:
    messages = {
        t.name.lower(): {
            "name": t.value,
            "title": t.value,
            "summary": SUMMARIES[t],
            "contentType": "application/json",
            "payload": {"$ref": f"./{t.value}.json"},
        }
        for t in EventType
    }
    refs = [{"$ref": f"#/components/messages/{name}"} for name in messages]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "crisis-bus events",
            "version": __version__,
            "description": "Crisis events as CloudEvents 1.0 with the extensions tlp, tlprecipients, mode, "
            "role (the writing key's role) and idempotency (a retried request's fingerprint). On Kafka in "
            "binary content mode (ce_ headers, key = crisis id); on the WebSocket stream in structured mode "
            "with a resumable cursor.",
        },
        "servers": {
            "kafka": {"host": "localhost:9092", "protocol": "kafka"},
            "gateway": {"host": "localhost:8001", "protocol": "ws"},
        },
        "channels": {
            "events": {
                "address": topic,
                "servers": [{"$ref": "#/servers/kafka"}],
                "messages": {name: ref for name, ref in zip(messages, refs, strict=True)},
                "bindings": {"kafka": {"topic": topic, "bindingVersion": "0.5.0"}},
            },
            "stream": {
                "address": "/v1/stream",
                "servers": [{"$ref": "#/servers/gateway"}],
                "messages": {name: ref for name, ref in zip(messages, refs, strict=True)},
                "bindings": {
                    "ws": {
                        "query": {
                            "type": "object",
                            "properties": {
                                "crisis": {"type": "string", "description": "comma-separated crisis ids"},
                                "type": {"type": "string", "description": "comma-separated event types"},
                                "kind": {"type": "string", "description": "comma-separated indicator kinds"},
                                "mode": {"type": "string", "enum": ["live", "exercise", "both"]},
                                "cursor": {"type": "string", "description": "resume after this event"},
                            },
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
            },
        },
        "operations": {
            "publishEvent": {"action": "send", "channel": {"$ref": "#/channels/events"}},
            "receiveStream": {"action": "receive", "channel": {"$ref": "#/channels/stream"}},
        },
        "components": {"messages": messages},
    }


def render() -> dict[str, str]:
    """File name -> content, deterministic, for writing and for the drift test."""
    files = {f"{t.value}.json": event_schema(t) for t in EventType}
    files["asyncapi.json"] = asyncapi()
    return {name: json.dumps(doc, indent=2, sort_keys=True) + "\n" for name, doc in files.items()}


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = out / name
        path.write_text(text)
        written.append(path)
    return written
