"""Server WebSocket frames built once and written as bytes to every recipient.

Server frames are unmasked (RFC 6455 section 5.1) and the gateway never negotiates an extension, so the
bytes of a frame do not depend on the connection: build them once, write them many times.
"""

from __future__ import annotations

import struct

from crisis.domain.envelope import Envelope, envelope_json

_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame."""
    n = len(payload)
    if n < 126:
        return bytes((_FIN_TEXT, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", _FIN_TEXT, 126, n) + payload
    return struct.pack("!BBQ", _FIN_TEXT, 127, n) + payload


def event_prefix(env: Envelope) -> bytes:
    """The structured CloudEvent up to the value of its `cursor`: `prefix + cursor + b'"}'` is the payload.

    Kept apart from the cursor so a subscriber that needs a different cursor (one resuming ahead of this
    gateway) gets a frame without encoding the event again.
    """
    body = envelope_json(env)
    return body[:-1] + b',"cursor":"'


def event_frame(prefix: bytes, cursor: str) -> bytes:
    return text_frame(prefix + cursor.encode() + b'"}')
