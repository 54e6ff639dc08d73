"""`state` messages: what a subscription without cursor gets first, one per matching crisis it may read."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from crisis.domain.book import Book, CrisisRecord, IndicatorRecord
from crisis.domain.enums import EventType, Status
from crisis.domain.principal import Principal
from crisis.gateway import protocol
from crisis.gateway.protocol import Facts, Filter


def states(book: Book, principal: Principal, f: Filter, cursor: str) -> list[bytes]:
    """Crises named by the filter (or, for "all crises", those not closed), oldest first.

    The crisis itself is shown whatever the type filter says (it is the context of every event); its
    open indicators come along when the filter lets `indicator.shared` through, each under its own TLP.
    """
    context = replace(f, types=None, kinds=None)
    records = sorted(book.crises.values(), key=lambda r: r.state.created_at)
    out = []
    for record in records:
        if f.crises is None and record.state.status is Status.CLOSED:
            continue
        if not protocol.admits(principal, context, _crisis_facts(record)):
            continue
        indicators = _indicators(record, principal, f)
        out.append(protocol.state(record.state.model_dump(mode="json"), indicators, cursor))
    return out


def _crisis_facts(record: CrisisRecord) -> Facts:
    s = record.state
    return Facts(s.id, EventType.CRISIS_OPENED, None, s.tlp, s.mode, s.created_by, s.tlprecipients)


def _indicators(record: CrisisRecord, principal: Principal, f: Filter) -> list[dict[str, Any]]:
    if f.types is not None and EventType.INDICATOR_SHARED not in f.types:
        return []
    return [
        _indicator(i)
        for i in record.indicators.values()
        if not i.retracted and protocol.admits(principal, f, _indicator_facts(record, i))
    ]


def _indicator_facts(record: CrisisRecord, i: IndicatorRecord) -> Facts:
    return Facts(
        record.state.id,
        EventType.INDICATOR_SHARED,
        i.data.kind,
        i.tlp,
        record.state.mode,
        i.data.shared_by,
        i.tlprecipients,
    )


def _indicator(i: IndicatorRecord) -> dict[str, Any]:
    return {
        **i.data.model_dump(mode="json"),
        "shared_at": i.shared_at.isoformat(),
        "tlp": i.tlp.value,
        "tlprecipients": list(i.tlprecipients),
        "sightings": len(i.sightings),
    }
