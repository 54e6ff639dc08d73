"""Where the servers are, read in one place for every command, the exercise runner and the examples."""

from __future__ import annotations

import os
from typing import Final

API_URL_ENV: Final = "CRISIS_API_URL"
STREAM_URL_ENV: Final = "CRISIS_STREAM_URL"
DEFAULT_API_URL: Final = "http://127.0.0.1:8000"
DEFAULT_STREAM_URL: Final = "ws://127.0.0.1:8001/v1/stream"


def api_url(explicit: str | None = None) -> str:
    """The API's base URL: the flag if given, else `CRISIS_API_URL`, else the local default."""
    return (explicit or os.environ.get(API_URL_ENV) or DEFAULT_API_URL).rstrip("/")


def stream_url(explicit: str | None = None) -> str:
    """The gateway's stream URL: the flag if given, else `CRISIS_STREAM_URL`, else the local default."""
    return explicit or os.environ.get(STREAM_URL_ENV) or DEFAULT_STREAM_URL
