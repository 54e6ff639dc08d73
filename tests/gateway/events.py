"""Building events as the API does (crisis opened, indicator shared, action reported), and reading frames."""

from __future__ import annotations

import hashlib
import json
import struct
import uuid
from typing import Any

from crisis.domain.crisis import CrisisCreate, opened
from crisis.domain.enums import ActionOutcome, EventType, IndicatorKind, Mode, Role, Status, Tlp
from crisis.domain.envelope import Envelope, source_for, utcnow
from crisis.domain.events import ActionReported, CrisisChanged
from crisis.domain.principal import Principal

HEX_LENGTH = {
    IndicatorKind.MD5: 32,
    IndicatorKind.SHA1: 40,
    IndicatorKind.SHA256: 64,
    IndicatorKind.SHA512: 128,
    IndicatorKind.PDQ: 64,
}


def crisis_opened(
    org: str = "hub",
    *,
    mode: Mode = Mode.LIVE,
    tlp: Tlp = Tlp.AMBER,
    recipients: tuple[str, ...] = (),
    title: str = "Live-streamed attack",
    crisis_id: str | None = None,
) -> Envelope:
    """`crisis.opened` by a coordinator of `org`, in monitoring."""
    who = Principal(org=org, role=Role.COORDINATOR, key_id="k-" + org)
    req = CrisisCreate(
        title=title, mode=mode, status=Status.MONITORING, tlp=tlp, tlprecipients=list(recipients)
    )
    state, transition = opened(crisis_id or str(uuid.uuid4()), req, who, utcnow())
    data = CrisisChanged(crisis=state, transition=transition, expected_version=0)
    return Envelope(
        source=source_for(org, who.key_id),
        type=EventType.CRISIS_OPENED,
        time=transition.at,
        subject=state.id,
        tlp=state.tlp,
        mode=state.mode,
        tlprecipients=state.tlprecipients,
        data=data.model_dump(mode="json"),
    )


def indicator_shared(
    crisis: Envelope,
    org: str = "bka",
    *,
    kind: IndicatorKind = IndicatorKind.SHA256,
    tlp: Tlp | None = None,
    recipients: tuple[str, ...] = (),
    seq: int = 0,
    event_id: str | None = None,
) -> Envelope:
    """`indicator.shared` of a hash-like kind (a unique value per `seq`), as the indicators route makes it."""
    length = HEX_LENGTH.get(kind, 64)
    value = hashlib.sha512(f"{crisis.subject}:{seq}:{uuid.uuid4()}".encode()).hexdigest()[:length]
    event_id = event_id or str(uuid.uuid4())
    data: dict[str, Any] = {"kind": kind.value, "value": value, "canonical": value, "context": {"labels": []}}
    if kind in (IndicatorKind.TMK, IndicatorKind.VPDQ):
        data = {
            "kind": kind.value,
            "canonical": f"{value[:64]}:10",
            "blob": {"sha256": value[:64], "size": 10},
        }
    elif kind is IndicatorKind.URL:
        data = {
            "kind": "url",
            "value": f"https://x.example/{value}",
            "canonical": f"https://x.example/{value}",
        }
    elif kind is IndicatorKind.METADATA:
        data = {"kind": "metadata", "canonical": value, "context": {"platform": value[:20]}}
    data.update(indicator_id=event_id, shared_by=org)
    return Envelope(
        id=event_id,
        source=source_for(org, "k-" + org),
        type=EventType.INDICATOR_SHARED,
        subject=crisis.subject,
        tlp=tlp or crisis.tlp,
        mode=crisis.mode,
        tlprecipients=recipients,
        data=data,
    )


def action_reported(indicator: Envelope, org: str = "vidshare", outcome: str = "received") -> Envelope:
    data = ActionReported(
        indicator_id=str(indicator.data["indicator_id"]),
        outcome=ActionOutcome(outcome),
        provider_org=org,
        at=utcnow(),
    )
    return Envelope(
        source=source_for(org, "k-" + org),
        type=EventType.ACTION_REPORTED,
        subject=indicator.subject,
        tlp=indicator.tlp,
        mode=indicator.mode,
        tlprecipients=indicator.tlprecipients,
        data=data.model_dump(mode="json"),
    )


def parse_frames(data: bytes) -> list[dict[str, Any]]:
    """Unmasked server text frames, concatenated, back to JSON messages."""
    out, pos = [], 0
    while pos < len(data):
        head, size = data[pos], data[pos + 1] & 0x7F
        assert head == 0x81 and not data[pos + 1] & 0x80, "an unfragmented, unmasked text frame"
        pos += 2
        if size == 126:
            (size,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif size == 127:
            (size,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        out.append(json.loads(data[pos : pos + size]))
        pos += size
    return out
