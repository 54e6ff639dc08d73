"""The Python client of the live stream: `async for event in stream(url, key, ...)`."""

from crisis.client.stream import Message, Stream, StreamRefused, stream

__all__ = ["Message", "Stream", "StreamRefused", "stream"]
