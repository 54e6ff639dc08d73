"""The one envelope every event travels in: CloudEvents 1.0 plus `tlp` and `mode`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from crisis.domain.enums import EventType, Mode, Role, Tlp

SPECVERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/json"


def new_event_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


def source_for(org: str, key_id: str) -> str:
    """The CloudEvents `source`: the organisation and key that wrote the event (the audit trail)."""
    return f"/orgs/{org}/keys/{key_id}"


class Envelope(BaseModel):
    """A CloudEvent as stored in Kafka (binary mode) and delivered over the stream (structured JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = SPECVERSION
    id: str = Field(default_factory=new_event_id, min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=512)
    type: EventType
    time: AwareDatetime = Field(default_factory=utcnow)
    subject: str = Field(min_length=1, max_length=128, description="The crisis id.")
    datacontenttype: Literal["application/json"] = CONTENT_TYPE
    tlp: Tlp
    mode: Mode
    tlprecipients: tuple[str, ...] = Field(
        default=(), description="Organisations that may read a RED or AMBER+STRICT event."
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
    data: dict[str, Any]

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @property
    def author_org(self) -> str:
        """The organisation in `source` (`/orgs/{org}/keys/{key}`)."""
        parts = self.source.split("/")
        return parts[2] if len(parts) > 2 and parts[1] == "orgs" else ""

    @property
    def crisis_id(self) -> str:
        return self.subject
