"""crisis.client: backoff with jitter, bounded dedupe, cursors, refusals, reconnects across restarts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Close

from crisis.broker import free_port
from crisis.client import Stream, StreamRefused
from crisis.client.stream import _Seen
from crisis.config import Settings
from crisis.keys import KeyStore
from tests.conftest import Stack
from tests.gateway.conftest import indicators, open_crisis, publish
from tests.gateway.test_resume import check_exact, consume, second_gateway


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    s = Stream("ws://x/v1/stream", "k", backoff=0.1, backoff_max=2.0)
    ceilings = []
    for failures in range(1, 9):
        s._failures = failures
        delays = [s._delay() for _ in range(200)]
        ceiling = min(2.0, 0.1 * 2 ** (failures - 1))
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2  # spread, not a fixed delay
        ceilings.append(ceiling)
    assert ceilings[-1] == 2.0


def test_dedupe_memory_is_bounded() -> None:
    seen = _Seen(3)
    assert all(seen.add(i) for i in "abc")
    assert not seen.add("a")
    assert seen.add("d")  # forgets the oldest ("b"; "a" was just refreshed)
    assert seen.add("b")
    assert not seen.add("d")


def message(**body: Any) -> str:
    return json.dumps(body)


def test_messages_move_the_cursor_and_duplicates_are_dropped() -> None:
    s = Stream("ws://x/v1/stream", "k")
    assert s._accept(message(type="subscribed", cursor="C0")) is None
    assert s.cursor == "C0"
    event = message(specversion="1.0", id="e1", type="indicator.shared", subject="c", data={}, cursor="C1")
    first = s._accept(event)
    assert first is not None and first.id == "e1" and first.cursor == "C1" and first.is_event
    assert s._accept(event) is None
    assert s._accept(message(type="state", crisis={}, cursor="C2")) is None  # control: not asked for
    assert s.cursor == "C2"
    s._accept(message(type="gap", reason="retention", missing=[], cursor="C3"))
    assert s.gaps and s.gaps[0]["reason"] == "retention"
    with_control = Stream("ws://x/v1/stream", "k", control=True)
    state = with_control._accept(message(type="state", crisis={"id": "c"}, cursor="C"))
    assert state is not None and state.type == "state" and not state.is_event


def test_the_address_carries_filters_and_cursor() -> None:
    s = Stream(
        "ws://h/v1/stream", "k", crises=["a", "b"], types=["indicator.shared"], mode="both", cursor="CUR"
    )
    assert s.address() == "ws://h/v1/stream?crisis=a%2Cb&type=indicator.shared&mode=both&cursor=CUR"


@pytest.mark.kafka
async def test_a_refused_key_or_filter_raises_instead_of_retrying(full_stack: Stack) -> None:
    observer = full_stack.add_key("press", "observer")
    with pytest.raises(StreamRefused) as info:
        async with Stream(full_stack.ws_url, "cb_nobody_nothing") as s:
            await s.connect()
    assert info.value.status == 401
    with pytest.raises(StreamRefused) as info:
        async with Stream(full_stack.ws_url, observer, types=["indicator.shared"]) as s:
            await s.connect()
    assert info.value.status == 403


@pytest.mark.kafka
async def test_the_client_follows_a_gateway_restart_without_loss(
    full_stack: Stack, settings: Settings, free_port_: int
) -> None:
    s = full_stack
    crises = [await open_crisis(s) for _ in range(2)]
    sent = indicators(crises, 1_000)
    key = s.add_key("vidshare", "provider")
    keys = KeyStore(settings.keys_file)
    url = f"ws://127.0.0.1:{free_port_}/v1/stream"
    async with Stream(
        url, key, types=["indicator.shared"], dedupe=0, backoff=0.05, backoff_max=0.2
    ) as stream:
        async with second_gateway(settings, keys, port=free_port_):
            await stream.connect()
            await publish(s.bus, sent[:500])
            got = await consume(stream, 300)
        # That gateway said goodbye (1001); events go on while none is up; the next one takes over.
        await publish(s.bus, sent[500:])
        async with second_gateway(settings, keys, port=free_port_):
            got += await consume(stream, len(sent) - len(got))
        assert stream.connects == 2
    check_exact(got, sent)


@pytest.fixture
def free_port_() -> int:
    return free_port()


def test_close_codes_decide_between_resuming_and_giving_up() -> None:
    stream = Stream("ws://x/v1/stream", "k")
    # Closed for being slow before it saw anything: the reason's cursor is where it resumes.
    stream._lost(ConnectionClosedError(Close(4008, "slow consumer; cursor=ABC"), None))
    assert stream.cursor == "ABC" and stream._failures == 1
    stream._lost(ConnectionClosedError(Close(1001, "gateway shutting down; cursor=XYZ"), None))
    assert stream.cursor == "ABC"  # its own cursor wins once it has one
    stream._lost(ConnectionClosedError(None, None))  # a cut: no close frame at all
    assert stream._failures == 3
    with pytest.raises(StreamRefused):
        stream._lost(ConnectionClosedError(Close(1008, "the API key was revoked or expired"), None))
