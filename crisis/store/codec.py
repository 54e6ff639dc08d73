"""How the store keeps an indicator and an envelope as text: one pydantic schema each, so both ways run in
pydantic-core (a store of another layout is rebuilt: crisis.store.writer.VERSION)."""

from __future__ import annotations

from datetime import datetime

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from crisis.domain.book import IndicatorRecord, Sighting
from crisis.domain.enums import Tlp
from crisis.domain.envelope import Envelope
from crisis.domain.events import IndicatorShared


class _Stored(TypedDict):
    data: IndicatorShared
    shared_at: datetime
    tlp: Tlp
    to: tuple[str, ...]
    seen: list[tuple[str, datetime]]
    retracted: bool


_INDICATOR = TypeAdapter(_Stored)


def dump_indicator(r: IndicatorRecord) -> bytes:
    stored: _Stored = {
        "data": r.data,
        "shared_at": r.shared_at,
        "tlp": r.tlp,
        "to": r.tlprecipients,
        "seen": [(s.org, s.at) for s in r.sightings],
        "retracted": r.retracted,
    }
    return _INDICATOR.dump_json(stored)


def load_indicator(text: str | bytes) -> IndicatorRecord:
    raw = _INDICATOR.validate_json(text)
    return IndicatorRecord(
        data=raw["data"],
        shared_at=raw["shared_at"],
        tlp=raw["tlp"],
        tlprecipients=raw["to"],
        sightings=[Sighting(org=org, at=at) for org, at in raw["seen"]],
        retracted=raw["retracted"],
    )


def load_envelope(text: str | bytes) -> Envelope:
    return Envelope.model_validate_json(text)
