"""What an import yields, whatever the format: indicator submissions, their label, and what was skipped."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from crisis.domain.audience import is_wider
from crisis.domain.enums import Tlp

_STRICTNESS = {tlp: rank for rank, tlp in enumerate(Tlp)}


@dataclass(frozen=True, slots=True)
class Imported:
    """Indicators read from a document, as submissions (`IndicatorIn` fields), and what could not be."""

    items: list[dict[str, Any]]
    tlp: Tlp | None
    skipped: list[str]


def tlp_named(name: str) -> Tlp | None:
    """A TLP label as other tools write it (`white` is TLP 1.0's name for clear); None when unknown."""
    level = name.strip().lower().removeprefix("tlp:").replace("white", "clear")
    return Tlp(level) if level in {t.value for t in Tlp} else None


def strictest(labels: Iterable[Tlp | None]) -> Tlp | None:
    """The most restrictive of the labels found (an import never shares wider than its source)."""
    found = [t for t in labels if t is not None]
    return max(found, key=_STRICTNESS.__getitem__) if found else None


def share_label(found: Tlp | None, crisis: Tlp) -> Tlp | None:
    """The label to share an import under: the file's own when it is at least as strict as the crisis's,
    else None (the crisis's default: nothing is shared wider than the crisis allows)."""
    if found is None or is_wider(found, crisis):
        return None
    return found
