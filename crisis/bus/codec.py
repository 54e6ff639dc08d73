"""Envelope <-> Kafka record in CloudEvents' Kafka binary mode (`ce_` headers), via the cloudevents SDK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from crisis.domain.envelope import Envelope

_FORMAT = JSONFormat()
_EXTENSIONS = ("tlp", "mode", "tlprecipients")


@dataclass(frozen=True, slots=True)
class RawRecord:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def encode(env: Envelope) -> RawRecord:
    """Binary mode; the key is the crisis id so all events of one crisis share a partition and an order."""
    attributes: dict[str, Any] = {
        "specversion": env.specversion,
        "id": env.id,
        "source": env.source,
        "type": str(env.type),
        "time": env.time,
        "subject": env.subject,
        "datacontenttype": env.datacontenttype,
        "tlp": str(env.tlp),
        "mode": str(env.mode),
    }
    if env.tlprecipients:
        attributes["tlprecipients"] = ",".join(env.tlprecipients)
    message = ce_kafka.to_binary(CloudEvent(attributes=attributes, data=env.data), _FORMAT)
    return RawRecord(key=env.subject.encode(), value=message.value, headers=list(message.headers.items()))


def decode(value: bytes, headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> Envelope:
    """Raises ValueError (pydantic's ValidationError included) on a record that is not one of our events."""
    message = ce_kafka.KafkaMessage(headers=dict(headers), key=None, value=value)
    event = ce_kafka.from_binary(message, _FORMAT)
    attributes = event.get_attributes()
    recipients = attributes.get("tlprecipients") or ""
    return Envelope.model_validate(
        {
            **{k: v for k, v in attributes.items() if k not in _EXTENSIONS and k != "partitionkey"},
            "tlp": attributes.get("tlp"),
            "mode": attributes.get("mode"),
            "tlprecipients": tuple(r for r in recipients.split(",") if r),
            "data": event.get_data(),
        }
    )
