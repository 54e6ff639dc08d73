"""The Python client: `Client` / `AsyncClient` for the HTTP API, `stream(url, key, ...)` for the live stream.

Where the servers are (`CRISIS_API_URL`, `CRISIS_STREAM_URL`) is read by `crisis.endpoints`.
"""

from crisis.client.http import ApiError, AsyncClient, Client, Unreachable
from crisis.client.stream import INDICATOR_EVENTS, Message, Stream, StreamRefused, StreamUnavailable, stream

__all__ = [
    "INDICATOR_EVENTS",
    "ApiError",
    "AsyncClient",
    "Client",
    "Message",
    "Stream",
    "StreamRefused",
    "StreamUnavailable",
    "Unreachable",
    "stream",
]
