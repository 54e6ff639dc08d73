"""The codec writes the headers the cloudevents SDK writes, the SDK reads its records, and it reads every
record (ours, the SDK's, logs written through the SDK before, records that are no event) as the SDK did."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from crisis.bus.codec import decode, encode
from crisis.domain.enums import EventType, Mode, Role, Tlp
from crisis.domain.envelope import Envelope, envelope_json

_FORMAT = JSONFormat()
text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
orgs = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
hex64 = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.integers(2**63 - 2, 2**70)  # around and beyond orjson's 64 bits
    | st.floats(allow_nan=False)  # NaN is not equal to itself; records holding it are below
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
envelopes = st.builds(
    Envelope,
    source=text,
    type=st.sampled_from(EventType),
    # hypothesis takes naive bounds and attaches the timezone itself
    time=st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    subject=text,
    tlp=st.sampled_from(Tlp),
    mode=st.sampled_from(Mode),
    tlprecipients=st.lists(orgs, max_size=3).map(tuple),
    role=st.none() | st.sampled_from(Role),
    idempotency=st.none() | st.from_regex(r"[0-9a-f]{32}\.[0-9a-f]{64}", fullmatch=True),
    chainprev=st.none() | hex64,
    chainhash=st.none() | hex64,
    data=st.dictionaries(text, json_values, max_size=4),
).filter(lambda env: env.chainhash is not None or env.chainprev is None)  # a link is published whole


def sdk_event(env: Envelope) -> CloudEvent:
    attributes: dict[str, object] = {
        "specversion": env.specversion,
        "id": env.id,
        "source": env.source,
        "type": str(env.type),
        "time": env.time,
        "subject": env.subject,
        "datacontenttype": env.datacontenttype,
        "dataschema": env.dataschema,
        "tlp": str(env.tlp),
        "mode": str(env.mode),
    }
    if env.tlprecipients:
        attributes["tlprecipients"] = ",".join(env.tlprecipients)
    if env.role is not None:
        attributes["role"] = str(env.role)
    if env.idempotency is not None:
        attributes["idempotency"] = env.idempotency
    if env.chainhash is not None:
        if env.chainprev is not None:
            attributes["chainprev"] = env.chainprev
        attributes["chainhash"] = env.chainhash
    return CloudEvent(attributes=attributes, data=env.data)


def sdk_encode(env: Envelope) -> ce_kafka.KafkaMessage:
    """What the SDK's own CloudEvent writes: the bytes of every log written before this codec."""
    return ce_kafka.to_binary(sdk_event(env), _FORMAT)


def sdk_decode(value: bytes, headers: list[tuple[str, bytes]]) -> Envelope:
    """How records were read through the SDK's `from_binary` before this codec."""

    def factory(attributes: dict[str, Any], data: Any) -> Envelope:
        if "specversion" not in attributes:
            raise ValueError("not a CloudEvent: no ce_specversion header")
        attributes["data"] = data
        return Envelope.model_validate(attributes)

    message = ce_kafka.KafkaMessage(headers=dict(headers), key=None, value=value)
    return ce_kafka.from_binary(message, _FORMAT, factory)  # type: ignore[arg-type, return-value]


def outcome(read: Any, value: bytes, headers: list[tuple[str, bytes]]) -> tuple[Any, ...]:
    """The envelope read (its repr: NaN is not equal to itself), or the kind of refusal and where."""
    try:
        return ("read", repr(read(value, headers)))
    except ValidationError as refused:
        return ("refused", ValidationError, [e["loc"] for e in refused.errors()])
    except Exception as refused:  # any refusal must be the one the SDK's path gave
        return ("refused", type(refused))


@given(envelopes)
def test_headers_and_key_are_the_sdks_and_the_sdk_reads_our_records(env: Envelope) -> None:
    ours = encode(env)
    theirs = sdk_encode(env)
    assert ours.headers == list(theirs.headers.items())
    assert ours.key == env.subject.encode()
    back = ce_kafka.from_binary(ce_kafka.KafkaMessage(dict(ours.headers), ours.key, ours.value), _FORMAT)
    assert back.get_data() == env.data
    attributes = back.get_attributes()
    assert attributes.pop("partitionkey") == env.subject
    assert attributes == sdk_event(env).get_attributes()


@given(envelopes)
def test_our_records_and_those_written_through_the_sdk_read_back_as_the_event(env: Envelope) -> None:
    ours = encode(env)
    theirs = sdk_encode(env)
    assert decode(ours.value, ours.headers) == env
    assert decode(theirs.value, list(theirs.headers.items())) == env


SPELLINGS_OF_TIME = [
    "2026-03-01T12:00:00Z",
    "2026-03-01T12:00:00.123456Z",
    "0999-03-01T12:00:00.123456Z",
    "2026-03-01T24:00:00Z",
    "2026-02-30T12:00:00.000000Z",
    "2026-03-01T12:00:60Z",
    "2026-03-01T12:00:00.5Z",
    "2026-03-01T12:00:00+02:00",
    "2026-03-01T12:00:00.123456+00:00",
    "2026-03-01T12:00:00",
    "2026-03-01t12:00:00z",
    "20260301T120000Z",
    "2026-03-01 12:00:00Z",
    "٢٠٢٦-03-01T12:00:00Z",
    "yesterday",
]
VALUES = [
    b"",
    b"null",
    b"[1, 2]",
    b'"text"',
    b"not json",
    b'{"a": NaN, "b": Infinity}',
    b'{"n": 18446744073709551616, "m": -9223372036854775809}',
    b'{"f": 1e400, "g": 1.5, "h": 1E2}',
    b'{"s": "\\ud800"}',
    b'{"s": "\\ud83d\\ude00 \\u00e9 \x7f"}',
    b'{"s": "\x01"}',
    b'{"a": 1, "a": 2}',
    b'\xef\xbb\xbf{"a": 1}',
    b'{"a": 1} ',
    b"\xff\xfe",
]
CONTENT_TYPES = [b"application/json", b"application/json; charset=utf-8", b"text/plain", b"APPLICATION/JSON"]


@st.composite
def altered_records(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Records as a topic may hold them: ours, altered in the ways a foreign producer or an old log might."""
    record = encode(draw(envelopes))
    value, headers = record.value, list(record.headers)
    if draw(st.booleans()):
        value = draw(st.sampled_from(VALUES))
    for _ in range(draw(st.integers(0, 3))):
        index = draw(st.integers(0, len(headers) - 1))
        name, raw = headers[index]
        change = draw(st.sampled_from(["time", "case", "drop", "extra", "repeat", "type", "bytes"]))
        if change == "time":
            spelling = draw(st.sampled_from(SPELLINGS_OF_TIME) | st.datetimes().map(datetime.isoformat))
            headers = [(n, spelling.encode() if n == "ce_time" else r) for n, r in headers]
        elif change == "case" and name not in ("ce_id", "ce_time"):  # unread in another case, these
            headers[index] = (name.upper(), raw)  # would default to new values on each side
        elif change == "drop" and name not in ("ce_id", "ce_time"):  # they would default to new values
            del headers[index]
        elif change == "extra":
            headers.append((draw(st.sampled_from(["ce_partitionkey", "ce_extra", "x-trace"])), raw))
        elif change == "repeat":
            headers.append((name, draw(st.sampled_from([raw, b"other", b"1.0"]))))
        elif change == "type":
            headers.append(("content-type", draw(st.sampled_from(CONTENT_TYPES))))
        else:
            headers[index] = (name, b"\xff" + raw)
        if not headers:
            break
    return value, headers


@given(altered_records())
def test_any_record_is_read_or_refused_exactly_as_through_the_sdk(record: tuple[bytes, list[Any]]) -> None:
    value, headers = record
    assert outcome(decode, value, headers) == outcome(sdk_decode, value, headers)


def test_a_record_that_is_not_one_of_our_events_is_refused_with_a_value_error() -> None:
    with pytest.raises(ValueError, match="no ce_specversion"):
        decode(b'{"a": 1}', [("content-type", b"application/json")])
    event = encode(
        Envelope(
            source="/orgs/hub/keys/k",
            type=EventType.CRISIS_OPENED,
            subject="c1",
            tlp=Tlp.AMBER,
            mode=Mode.LIVE,
            data={},
        )
    )
    for value in (b"[]", b"", b"{", b'{"a": 1.5e}'):
        with pytest.raises(ValidationError):
            decode(value, event.headers)
    with pytest.raises(ValueError, match="Expected 4 digits"):
        decode(event.value, [*event.headers, ("ce_time", b"the day after")])


@given(envelopes)
def test_the_fast_structured_json_is_pydantics_byte_for_byte(env: Envelope) -> None:
    assert envelope_json(env) == env.model_dump_json().encode()
