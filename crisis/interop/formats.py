"""One entry for imports: a document's format, told from its content or named, read into submissions.

STIX 2.1 bundles, MISP events (a single event, an event file from a MISP feed, a list of events, or the
`{"response": [...]}` of MISP's search API) and plain hash lists. JSON lines and CSV stay the CLI's own
(the HTTP API takes JSON batches directly).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from crisis.domain.enums import IndicatorKind
from crisis.interop.hashlist import read_hash_list
from crisis.interop.misp import read_event
from crisis.interop.submissions import Imported, strictest


class Format(StrEnum):
    STIX = "stix"
    MISP = "misp"
    HASHES = "hashes"


def detect(text: str) -> Format | None:
    """The format of a document by its content: a STIX bundle, a MISP event, or a hash list (None: JSON
    that is neither, which the caller may read as JSON lines)."""
    if not text.lstrip().startswith(("{", "[")):
        return Format.HASHES
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if isinstance(document, dict) and document.get("type") == "bundle":
        return Format.STIX
    if _events(document):
        return Format.MISP
    return None


def read(text: str, fmt: Format, kind: IndicatorKind | None = None) -> Imported:
    """Submissions from `text` in `fmt`; ValueError with a reason when the whole document is unreadable."""
    if fmt is Format.HASHES:
        parsed = read_hash_list(text.splitlines(), kind)
        skipped = [f"line {e.line}: {e.message}" for e in parsed.errors]
        return Imported([dict(item) for item in parsed.items], None, skipped)
    if kind is not None:
        raise ValueError(f"a {fmt} document names its own kinds; 'kind' is for hash lists")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if fmt is Format.STIX:
        # Imported when a bundle comes in, not at start (crisis.api.routes.exports says why).
        from crisis.interop.stix import read_bundle

        return read_bundle(document)
    events = _events(document)
    if not events:
        raise ValueError("not a MISP event: no Event object")
    found = [read_event(e) for e in events]
    items = [item for imported in found for item in imported.items]
    skipped = [f"event {n}: {s}" if len(found) > 1 else s for n, i in enumerate(found) for s in i.skipped]
    return Imported(items, strictest(i.tlp for i in found), skipped)


def _events(document: Any) -> list[dict[str, Any]]:
    """The MISP events a document holds, in the shapes MISP writes them."""
    if isinstance(document, dict) and isinstance(document.get("response"), list):
        document = document["response"]
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        return []
    events = [d for d in document if isinstance(d, dict) and isinstance(d.get("Event"), dict)]
    return events if len(events) == len(document) and events else []
