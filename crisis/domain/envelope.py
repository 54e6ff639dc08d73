"""The one envelope every event travels in: CloudEvents 1.0 plus `tlp` and `mode`.

Every attribute has one representation in every binding: CloudEvents extension values are scalars, so the
named recipients travel as one comma-separated string (`"bka,vidshare"`, `""` for none) in Kafka headers and
in structured JSON alike. Inside the process they are a tuple; the list form of older frames still reads.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from time import time_ns
from typing import Any, Final, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_serializer,
    field_validator,
    model_validator,
)

from crisis.domain.enums import EventType, Mode, Role, Tlp
from crisis.domain.jsonvalues import exact

SPECVERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/json"
MAX_ID: Final = 128  # the longest event id
# Where the published JSON Schemas live (schemas/ in the repository, served under this base).
SCHEMA_BASE: Final = "https://crisis-bus.org/schemas/"
# Attributes a binding adds that the envelope derives itself: the Kafka binding's `partitionkey` (the record
# key, the crisis id) and `dataschema` (from `type`). Accepted on input and dropped.
_DERIVED: Final = ("partitionkey", "dataschema")


def new_event_id() -> str:
    """A version 4 UUID as text, as `str(uuid.uuid4())` writes it, whose first 48 bits are the time in
    milliseconds (as in a version 7 UUID) and the other 74 random.

    Ids made later sort later: the stores index every event and key by id (crisis.store, the key file),
    and an id that lands beside the last one changes a page or two of an index, where a random one
    changes a page of its own for each new row (measured: the key file's inserts cost 2.8-4.9 instead of
    12-28 ms per 1,000). Still version 4 (random) to readers that check: STIX asks version 4 of the ids
    of its objects (crisis.interop.stix keeps them). The time it shows is the event's own `time`."""
    raw = bytearray((time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utcnow() -> datetime:
    return datetime.now(UTC)


# RFC 3339 in UTC, always with microseconds: one spelling of every instant (the hash chain's, the codec's).
TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_text(at: datetime) -> str:
    """`at` in TIME_FORMAT; formatted by hand where that spells what strftime does (UTC, 4-digit years)."""
    if at.tzinfo is UTC and at.year >= 1000:
        return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 (the fastest exact spelling)
            at.year,
            at.month,
            at.day,
            at.hour,
            at.minute,
            at.second,
            at.microsecond,
        )
    return at.astimezone(UTC).strftime(TIME_FORMAT)


def source_for(org: str, key_id: str) -> str:
    """The CloudEvents `source`: the organisation and key that wrote the event (the audit trail)."""
    return f"/orgs/{org}/keys/{key_id}"


class Envelope(BaseModel):
    """A CloudEvent as stored in Kafka (binary mode) and delivered over the stream (structured JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = SPECVERSION
    id: str = Field(default_factory=new_event_id, min_length=1, max_length=MAX_ID)
    source: str = Field(min_length=1, max_length=512)
    type: EventType
    time: AwareDatetime = Field(default_factory=utcnow)
    subject: str = Field(min_length=1, max_length=128, description="The crisis id.")
    datacontenttype: Literal["application/json"] = CONTENT_TYPE
    tlp: Tlp
    mode: Mode
    tlprecipients: tuple[str, ...] = Field(
        default=(),
        description="Organisations that may read a RED or AMBER+STRICT event, comma-separated (a CloudEvents "
        "extension is a scalar); empty when none are named.",
    )
    role: Role | None = Field(
        default=None,
        description="The role of the key that wrote the event, stamped by the API from the authenticated key "
        "(only the API processes may write to the log, so the stamp is trusted). The fold checks role rules "
        "against it.",
    )
    idempotency: str | None = Field(
        default=None,
        max_length=160,
        pattern=r"^[0-9a-f]{32}\.[0-9a-f]{64}$",
        description="For a write sent with an Idempotency-Key: `<scope>.<digest>`, the scope naming the "
        "(organisation, key) pair and the digest the request. The same key with another request is refused.",
    )
    chainprev: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="The `chainhash` of the previous event of the same crisis taken into its hash chain "
        "(64 zeros for a crisis's first event). Stamped by the API; see docs/safeguards.md.",
    )
    chainhash: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of this event's canonical JSON as published, `chainhash` itself left out "
        "(`chainprev` included, so each link covers the whole chain before it).",
    )
    data: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, value: Any) -> Any:
        if isinstance(value, dict) and any(name in value for name in _DERIVED):
            return {k: v for k, v in value.items() if k not in _DERIVED}
        return value

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_validator("tlprecipients", mode="before")
    @classmethod
    def _recipients(cls, value: Any) -> Any:
        """The comma-separated form of every binding; a list (frames written before it) reads the same."""
        if isinstance(value, str):
            return tuple(r for r in value.split(",") if r)
        return value

    @field_serializer("tlprecipients")
    def _joined(self, value: tuple[str, ...]) -> str:
        return ",".join(value)

    @computed_field(  # type: ignore[prop-decorator]
        description="The JSON Schema of `data` for this event type (a pointer into the event's schema)."
    )
    @property
    def dataschema(self) -> str:
        return f"{SCHEMA_BASE}{self.type.value}.json#/properties/data"

    @property
    def author_org(self) -> str:
        """The organisation in `source` (`/orgs/{org}/keys/{key}`)."""
        parts = self.source.split("/")
        return parts[2] if len(parts) > 2 and parts[1] == "orgs" else ""

    @property
    def crisis_id(self) -> str:
        return self.subject


def replaced(env: Envelope, **fields: Any) -> Envelope:
    """`env.model_copy(update=fields)` (the envelope is frozen), built directly: a model without extra or
    private attributes is its field dict plus the set of fields given, and model_copy spends most of its
    time copying those through the copy module. Every event is copied so two or three times on its way
    (sealed, linked, opened). Like model_copy, nothing is validated: callers pass valid values."""
    kind = type(env)
    copied = kind.__new__(kind)
    object.__setattr__(copied, "__dict__", {**env.__dict__, **fields})
    fields_set = env.__pydantic_fields_set__
    if not fields_set.issuperset(fields):
        fields_set = fields_set | fields.keys()
    # Shared when nothing new is set: a frozen model's set of fields is never changed in place.
    object.__setattr__(copied, "__pydantic_fields_set__", fields_set)
    object.__setattr__(copied, "__pydantic_extra__", None)
    object.__setattr__(copied, "__pydantic_private__", None)
    return copied


# UTC times as pydantic spells them, by time (equal UTC times are spelled alike): a batch shares one.
_TIME_TEXT: dict[datetime, str] = {}
_DATASCHEMA: Final = {t: f"{SCHEMA_BASE}{t.value}.json#/properties/data" for t in EventType}


def envelope_json(env: Envelope) -> bytes:
    """`env.model_dump_json().encode()`, byte for byte, written by orjson where it writes the same (the
    store keeps every event it folds this way, and the gateway sends each once per frame): attributes in
    field order, the time as pydantic spells a UTC time, `data` when crisis.domain.jsonvalues.exact finds
    only values both write alike; pydantic writes anything else."""
    at, data = env.time, env.data
    if at.tzinfo is not UTC or at.year < 1000 or not exact(data):
        return env.model_dump_json().encode()
    time = _TIME_TEXT.get(at)
    if time is None:
        if len(_TIME_TEXT) >= 1024:
            _TIME_TEXT.clear()
        # pydantic leaves out a fraction of zero microseconds.
        time = _TIME_TEXT[at] = utc_text(at) if at.microsecond else utc_text(at)[:-8] + "Z"
    try:
        return orjson.dumps(
            {
                "specversion": env.specversion,
                "id": env.id,
                "source": env.source,
                "type": env.type,
                "time": time,
                "subject": env.subject,
                "datacontenttype": env.datacontenttype,
                "tlp": env.tlp,
                "mode": env.mode,
                "tlprecipients": ",".join(env.tlprecipients),
                "role": env.role,
                "idempotency": env.idempotency,
                "chainprev": env.chainprev,
                "chainhash": env.chainhash,
                "data": data,
                "dataschema": _DATASCHEMA[env.type],
            }
        )
    except TypeError:  # an int beyond 64 bits, a lone surrogate
        return env.model_dump_json().encode()
