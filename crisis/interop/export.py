"""A crisis's export as the reader may read it: plain values the field's formats are written from.

The caller (crisis.api.exports) filters by the domain's audience rule; crisis.interop.stix and
crisis.interop.misp map these values. Kept apart from the STIX mapping so that what builds an export does
not import the stix2 library, which every API process would otherwise load at start for its first export.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from crisis.domain.crisis import CrisisState
from crisis.domain.enums import ActionOutcome, Tlp
from crisis.domain.indicators import Indicator


@dataclass(frozen=True, slots=True)
class SharedIndicator:
    """One indicator as the reader may see it."""

    id: str
    indicator: Indicator
    shared_by: str
    shared_at: datetime
    tlp: Tlp
    retracted: bool = False
    sightings: Sequence[tuple[str, datetime]] = ()


@dataclass(frozen=True, slots=True)
class ProviderAction:
    id: str
    indicator_id: str
    org: str
    outcome: ActionOutcome
    at: datetime
    note: str = ""


@dataclass(frozen=True, slots=True)
class CrisisExport:
    """Everything of one crisis the reader may read: the caller filters, this module only maps."""

    crisis: CrisisState
    indicators: Sequence[SharedIndicator] = ()
    actions: Sequence[ProviderAction] = ()
    exported_at: datetime | None = field(default=None)
