"""The codec writes exactly what the cloudevents SDK's own CloudEvent path writes, and reads it back."""

from __future__ import annotations

from datetime import UTC, datetime

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given
from hypothesis import strategies as st

from crisis.bus.codec import decode, encode
from crisis.domain.enums import EventType, Mode, Role, Tlp
from crisis.domain.envelope import Envelope

_FORMAT = JSONFormat()
text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
orgs = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
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
    data=st.dictionaries(text, json_values, max_size=4),
)


def sdk_encode(env: Envelope) -> ce_kafka.KafkaMessage:
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
    return ce_kafka.to_binary(CloudEvent(attributes=attributes, data=env.data), _FORMAT)


@given(envelopes)
def test_records_are_byte_identical_to_the_sdk_and_round_trip(env: Envelope) -> None:
    ours = encode(env)
    theirs = sdk_encode(env)
    assert ours.value == theirs.value
    assert dict(ours.headers) == theirs.headers
    assert decode(theirs.value, list(theirs.headers.items())) == env
    back = ce_kafka.from_binary(ce_kafka.KafkaMessage(dict(ours.headers), None, ours.value), _FORMAT)
    assert back.get_id() == env.id and back.get_data() == env.data
