"""How the store keeps an indicator and an envelope as text: one pydantic schema each, so both ways run in
pydantic-core (a store of another layout is rebuilt: crisis.store.writer.VERSION)."""

from __future__ import annotations

from datetime import datetime

from pydantic import TypeAdapter

from crisis.domain.book import IndicatorRecord, Sighting
from crisis.domain.enums import Tlp
from crisis.domain.envelope import Envelope
from crisis.domain.events import IndicatorShared

# An indicator as a JSON array: data, shared at, TLP, recipients, sightings (org, at), retracted.
_INDICATOR = TypeAdapter(
    tuple[IndicatorShared, datetime, Tlp, tuple[str, ...], list[tuple[str, datetime]], bool]
)


def dump_indicator(r: IndicatorRecord) -> bytes:
    seen = [(s.org, s.at) for s in r.sightings]
    return _INDICATOR.dump_json((r.data, r.shared_at, r.tlp, r.tlprecipients, seen, r.retracted))


def load_indicator(text: str | bytes) -> IndicatorRecord:
    data, shared_at, tlp, to, seen, retracted = _INDICATOR.validate_json(text)
    return IndicatorRecord(
        data=data,
        shared_at=shared_at,
        tlp=tlp,
        tlprecipients=to,
        sightings=[Sighting(org=org, at=at) for org, at in seen],
        retracted=retracted,
    )


def load_envelope(text: str | bytes) -> Envelope:
    return Envelope.model_validate_json(text)
