"""The Python client of the live stream: `async for event in stream(url, key, ...)`."""

from crisis.client.stream import INDICATOR_EVENTS, Message, Stream, StreamRefused, stream

__all__ = ["INDICATOR_EVENTS", "Message", "Stream", "StreamRefused", "stream"]
