"""Envelope <-> Kafka record in CloudEvents' Kafka binary mode (`ce_` headers), written out by hand.

Every event of the bus passes here once or more per process, so the binding is spelled directly instead of
going through the cloudevents SDK's generic per-attribute work: the same `ce_` headers with the same values,
`content-type` for `datacontenttype`, the crisis id as key, `data` as JSON (orjson where it reads and writes
what the json module does, crisis.domain.jsonvalues; json otherwise). The SDK's `from_binary` reads what this
writes, and this reads what the SDK (and this codec before it) wrote exactly as the SDK did: anything off the
fast path (header names in other cases, times in other spellings, other content types, JSON orjson may read
differently) goes through the SDK's own functions. Records are input: the Envelope validates every one.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import orjson
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat

from crisis.domain.enums import EventType
from crisis.domain.envelope import CONTENT_TYPE, SPECVERSION, Envelope, utc_text
from crisis.domain.jsonvalues import exact

_FORMAT: Final = JSONFormat()
# The envelope allows one value of each (literal types): the same header on every record.
_SPECVERSION: Final = ("ce_specversion", SPECVERSION.encode())
_CONTENT_TYPE: Final = ("content-type", CONTENT_TYPE.encode())
# `ce_type` and `ce_dataschema` (derived from the type) per event type, from the first event of each.
_TYPE_HEADERS: dict[EventType, tuple[tuple[str, bytes], tuple[str, bytes]]] = {}
# The Kafka binding's header names as written (lower case), and the attribute each carries: every attribute
# of the envelope (`data` is the value; `datacontenttype` travels as `content-type`).
_ATTRIBUTE_OF: Final = {
    "content-type": "datacontenttype",
    **{
        f"ce_{name}": name
        for name in (*Envelope.model_fields, *Envelope.model_computed_fields)
        if name not in ("data", "datacontenttype")
    },
}
# The times the binding writes (`datetime.isoformat()` in UTC, `Z` for `+00:00`), which the standard library
# reads as the SDK's parser does; any other spelling takes the SDK's path.
_WRITTEN_TIME: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?Z", re.ASCII)


class RawRecord(NamedTuple):
    """A Kafka record as written: a tuple, which costs a fifth of a frozen dataclass to build."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


# Headers whose values repeat from event to event (a batch shares its writer, crisis, time and handling),
# by value: made once instead of once per record. Each is emptied when it grows past _CACHED.
_CACHED: Final = 4096
_SOURCE: dict[str, tuple[str, bytes]] = {}
_SUBJECT: dict[str, tuple[str, bytes]] = {}
_TIME: dict[datetime, tuple[str, bytes]] = {}
_TLP: dict[str, tuple[str, bytes]] = {}
_MODE: dict[str, tuple[str, bytes]] = {}
_RECIPIENTS: dict[tuple[str, ...], tuple[str, bytes]] = {}
_ROLE: dict[str, tuple[str, bytes]] = {}
_IDEMPOTENCY: dict[str, tuple[str, bytes]] = {}


def _made(cache: dict[Any, tuple[str, bytes]], value: Any, name: str, text: str) -> tuple[str, bytes]:
    if len(cache) >= _CACHED:
        cache.clear()
    made = cache[value] = (name, text.encode())
    return made


def encode(env: Envelope) -> RawRecord:
    """Binary mode; the key is the crisis id so all events of one crisis share a partition and an order."""
    type_headers = _TYPE_HEADERS.get(env.type)
    if type_headers is None:
        type_headers = _TYPE_HEADERS[env.type] = (
            ("ce_type", env.type.value.encode()),
            ("ce_dataschema", env.dataschema.encode()),
        )
    # The enums are StrEnums: their own text is their value (`.value` costs a property call).
    source, subject, at, tlp, mode = env.source, env.subject, env.time, env.tlp, env.mode
    subject_header = _SUBJECT.get(subject) or _made(_SUBJECT, subject, "ce_subject", subject)
    headers = [
        _SPECVERSION,
        ("ce_id", env.id.encode()),
        _SOURCE.get(source) or _made(_SOURCE, source, "ce_source", source),
        type_headers[0],
        # Equal times in UTC are spelled alike (others, equal across zones, may not be: never cached).
        (_TIME.get(at) or _made(_TIME, at, "ce_time", _time_text(at)))
        if at.tzinfo is UTC
        else ("ce_time", _time_text(at).encode()),
        subject_header,
        _CONTENT_TYPE,
        type_headers[1],
        _TLP.get(tlp) or _made(_TLP, tlp, "ce_tlp", tlp),
        _MODE.get(mode) or _made(_MODE, mode, "ce_mode", mode),
    ]
    recipients = env.tlprecipients
    if recipients:  # the same comma-separated string as in structured JSON
        headers.append(
            _RECIPIENTS.get(recipients)
            or _made(_RECIPIENTS, recipients, "ce_tlprecipients", ",".join(recipients))
        )
    # Extension attributes only when set: events written before they existed decode unchanged.
    role = env.role
    if role is not None:
        headers.append(_ROLE.get(role) or _made(_ROLE, role, "ce_role", role))
    idempotency = env.idempotency
    if idempotency is not None:
        headers.append(
            _IDEMPOTENCY.get(idempotency) or _made(_IDEMPOTENCY, idempotency, "ce_idempotency", idempotency)
        )
    if env.chainhash is not None:
        if env.chainprev is not None:
            headers.append(("ce_chainprev", env.chainprev.encode()))
        headers.append(("ce_chainhash", env.chainhash.encode()))
    return RawRecord(subject_header[1], _data_bytes(env.data), headers)


def decode(value: bytes, headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> Envelope:
    """Raises ValueError (pydantic's ValidationError included) on a record that is not one of our events."""
    attributes = _attributes(headers)
    if attributes is None:
        return _through_sdk(value, headers)
    if "specversion" not in attributes:
        raise ValueError("not a CloudEvent: no ce_specversion header")
    attributes["data"] = _data(value, attributes.get("datacontenttype"))
    # Derived from `type` (the envelope drops it anyway): dropped here, the envelope need not copy the rest.
    attributes.pop("dataschema", None)
    return Envelope.model_validate(attributes)


def _attributes(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, Any] | None:
    """The attributes of headers as this codec writes them; None for anything else (the SDK reads those)."""
    try:
        # The last of repeated headers wins, as when the SDK reads them.
        attributes: dict[str, Any] = {
            _ATTRIBUTE_OF[name]: raw.decode() for name, raw in dict(headers).items()
        }
    except (KeyError, UnicodeDecodeError, AttributeError):  # another name or case, not UTF-8, a null value
        return None
    text = attributes.get("time")
    if text is not None:
        if not _WRITTEN_TIME.fullmatch(text):
            return None
        try:
            attributes["time"] = datetime.fromisoformat(text)
        except ValueError:  # out of the standard library's range: the SDK's parser decides, as it did
            return None
    return attributes


def _through_sdk(value: bytes, headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> Envelope:
    """Other header names or cases, other spellings of time, bytes that are not UTF-8: the SDK's binding."""
    message = ce_kafka.KafkaMessage(headers=dict(headers), key=None, value=value)
    envelope = ce_kafka.from_binary(message, _FORMAT, _incoming)
    assert isinstance(envelope, Envelope)
    return envelope


def _incoming(attributes: dict[str, Any], data: Any) -> Any:
    """The SDK's event factory hook: build our Envelope straight from the parsed attributes."""
    if "specversion" not in attributes:
        raise ValueError("not a CloudEvent: no ce_specversion header")
    attributes["data"] = data
    return Envelope.model_validate(attributes)


def _time_text(at: datetime) -> str:
    """`isoformat()` with `Z` for `+00:00`, as the SDK writes a time; by hand for UTC with microseconds
    (where the chain's spelling is the same)."""
    if at.tzinfo is UTC and at.microsecond and at.year >= 1000:
        return utc_text(at)
    text = at.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _data_bytes(data: dict[str, Any]) -> bytes:
    if exact(data):
        try:
            return orjson.dumps(data)
        except TypeError:  # an int beyond 64 bits, a key that is not a string, a lone surrogate
            pass
    return json.dumps(data).encode()


def _data(value: bytes, content_type: str | None) -> Any:
    """`data` as the SDK's JSON format reads it (JSON, else text, else bytes); orjson where it agrees."""
    if content_type == CONTENT_TYPE:
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError:  # not JSON to orjson: NaN, lone surrogates, not UTF-8, not JSON at all
            pass
        else:
            if exact(data):  # a float may be an int beyond 64 bits to the json module
                return data
    return _FORMAT.read_data(value, content_type)
