"""The envelope's own helpers: event ids."""

from __future__ import annotations

import uuid

from crisis.domain.envelope import new_event_id


def test_new_event_ids_are_random_version_4_uuids_in_their_canonical_spelling() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text
