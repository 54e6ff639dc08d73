"""Bad client messages: each closes its own connection with a fitting code and a reason, never 1011."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from crisis.gateway import protocol
from crisis.gateway.protocol import MAX_DEPTH, ProtocolError
from tests.conftest import Stack
from tests.gateway.conftest import client, events, open_crisis, recv

NESTED = "[" * 30_000 + "]" * 30_000  # within the 64 KiB message limit; would exhaust a recursive decoder
# Each: what the client sends, the close code, a word the reason must contain.
BAD = {
    "not JSON": ("hello", 1007, "JSON"),
    "truncated JSON": ('{"type": "subscribe", "crises": [', 1007, "JSON"),
    "nested too deep": (NESTED, 1009, "nest"),
    "a deep value in a subscription": (
        json.dumps({"type": "subscribe", "crises": "x"})[:-1] + ', "mode": ' + "[" * 40 + "]" * 40 + "}",
        1009,
        "nest",
    ),
    "binary": (b'{"type": "subscribe"}', 1003, "binary"),
    "over 64 KiB": (json.dumps({"type": "subscribe", "crises": ["x" * 70_000]}), 1009, "exceeds"),
    "invalid UTF-8": (b'{"type": "\xff"}', 1007, "invalid"),
}


async def send(ws: ClientConnection, name: str, message: str | bytes) -> None:
    # Invalid UTF-8 can only be sent as a text frame by asking for one explicitly.
    await ws.send(message, text=True if name == "invalid UTF-8" else None)


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    """The close the gateway sent; whatever was on its way before it (`state` messages, say) is skipped."""
    try:
        async with asyncio.timeout(10):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        rcvd = closed.rcvd
    assert rcvd is not None, "the gateway closed without a close frame"
    return rcvd.code, rcvd.reason


@pytest.mark.kafka
@pytest.mark.parametrize("name", BAD)
async def test_a_bad_message_closes_that_stream_alone_with_a_code_and_reason(
    full_stack: Stack, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    message, code, word = BAD[name]
    key = full_stack.add_key("vidshare", "provider")
    async with client(full_stack.ws_url, key) as bystander, client(full_stack.ws_url, key) as ws:
        assert (await recv(bystander))["type"] == "subscribed"
        assert (await recv(ws))["type"] == "subscribed"
        with caplog.at_level(logging.ERROR):
            await send(ws, name, message)
            got, reason = await closed_with(ws)
        assert got == code and word in reason, (got, reason)
        crisis = await open_crisis(full_stack)
        [event] = await events(bystander, 1)
        assert event["subject"] == crisis.subject
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.kafka
@pytest.mark.parametrize("name", ["not JSON", "nested too deep", "binary"])
async def test_a_bad_first_message_from_a_browser_gets_the_same_codes(full_stack: Stack, name: str) -> None:
    message, code, word = BAD[name]
    async with connect(full_stack.ws_url) as ws:
        await send(ws, name, message)
        got, reason = await closed_with(ws)
    assert got == code and word in reason


# ------------------------------------------------------------------ the rules, with plain values


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("hello", protocol.INVALID_DATA),
        ("", protocol.INVALID_DATA),
        ("[" * 100_000, protocol.MESSAGE_TOO_BIG),
        ('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), protocol.MESSAGE_TOO_BIG),
        (b"{}", protocol.UNSUPPORTED_DATA),
        ('{"type": "subscribe", "colour": "red"}', protocol.POLICY_VIOLATION),
        ("[1]", protocol.POLICY_VIOLATION),
    ],
)
def test_each_refusal_carries_its_close_code(message: str | bytes, code: int) -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.parse_message(message)
    assert info.value.code == code and str(info.value)


def test_depth_is_counted_outside_strings_only() -> None:
    assert not protocol.too_deep("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert protocol.too_deep("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    brackets_in_strings = json.dumps({"type": "subscribe", "crises": ["[" * 100, '{"\\"[[[' * 10]})
    assert not protocol.too_deep(brackets_in_strings)
    assert protocol.parse_message(brackets_in_strings).filter.crises is not None  # type: ignore[union-attr]
    never_closed = '"unterminated \\"' + "[" * (MAX_DEPTH + 1)  # all inside the string: not nested, not JSON
    assert not protocol.too_deep(never_closed)
    with pytest.raises(ProtocolError) as info:
        protocol.parse_message(never_closed)
    assert info.value.code == protocol.INVALID_DATA


@given(st.integers(0, 2 * MAX_DEPTH), st.text(alphabet='[]{}"\\ab', max_size=8), st.booleans())
def test_the_depth_scan_agrees_with_the_nesting_it_is_given(depth: int, filler: str, objects: bool) -> None:
    value: object = filler
    for _ in range(depth):
        value = {filler: value, "x": filler} if objects else [filler, value]
    assert protocol.too_deep(json.dumps(value)) == (depth > MAX_DEPTH)
