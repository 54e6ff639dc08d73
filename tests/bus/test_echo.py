"""A writer's own reader reuses the events it wrote only when the log holds exactly those bytes."""

from __future__ import annotations

from typing import Any

import pytest

from crisis.bus.kafka import KafkaBus
from crisis.domain.enums import EventType, Mode, Tlp
from crisis.domain.envelope import Envelope

pytestmark = pytest.mark.kafka


def event(event_id: str, note: str) -> Envelope:
    return Envelope(
        id=event_id,
        source="/orgs/hub/keys/k1",
        type=EventType.INDICATOR_SHARED,
        subject="c1",
        tlp=Tlp.AMBER,
        mode=Mode.LIVE,
        data={"note": note},
    )


async def test_a_record_written_elsewhere_under_the_same_id_is_read_as_written(make_settings: Any) -> None:
    settings = make_settings()
    async with KafkaBus(settings) as ours, KafkaBus(settings) as theirs:
        await theirs.publish([event("same-id", "theirs")])
        await ours.publish([event("same-id", "ours"), event("other-id", "ours")])
        got = []
        async with ours.reader() as reader:
            for _ in range(100):
                got += await reader.next_batch(0.05)
                if len(got) >= 3 and reader.caught_up():
                    break
    assert [(d.envelope.id, d.envelope.data["note"]) for d in got] == [
        ("same-id", "theirs"),
        ("same-id", "ours"),
        ("other-id", "ours"),
    ]
