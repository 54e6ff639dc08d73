"""What a reader may read of one crisis, as the plain values every export maps (STIX, MISP, TAXII).

The one place an export is filtered: the domain's audience rule picks the indicators (each its own TLP),
the actions (their events' audience, on readable indicators only) and, with an indicator, its sightings.
"""

from __future__ import annotations

from datetime import datetime

from crisis.domain import commands
from crisis.domain.audience import may_read_event
from crisis.domain.book import SHARERS, Book, IndicatorRecord
from crisis.domain.principal import Principal
from crisis.interop.export import CrisisExport, ProviderAction, SharedIndicator


def readable_export(book: Book, reader: Principal, crisis_id: str, now: datetime) -> CrisisExport:
    """The crisis as `reader` may read it; DomainError (not found, forbidden) as for any other read."""
    commands.require(reader, SHARERS, "export indicators")
    record = commands.readable_crisis(book, reader, crisis_id)
    # An erased indicator has no value left to map (no pattern, no hash): it is left out of exports.
    indicators = [
        r
        for r in record.indicators.values()
        if r.readable_by(reader, record.state.mode) and not r.data.erased
    ]
    readable = {r.data.indicator_id for r in indicators}
    actions = [
        ProviderAction(env.id, data.indicator_id, data.provider_org, data.outcome, data.at, data.note)
        for env, data in record.actions
        if data.indicator_id in readable and may_read_event(reader, env)
    ]
    return CrisisExport(record.state, [_shared(r) for r in indicators], actions, exported_at=now)


def _shared(r: IndicatorRecord) -> SharedIndicator:
    return SharedIndicator(
        id=r.data.indicator_id,
        indicator=r.data,
        shared_by=r.data.shared_by,
        shared_at=r.shared_at,
        tlp=r.tlp,
        retracted=r.retracted,
        sightings=[(s.org, s.at) for s in r.sightings],
    )
