"""The duty officer's web console: one static page, served by the API on localhost."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from crisis.api.deps import SettingsDep

router = APIRouter(include_in_schema=False)

# Served with a strict policy: the page uses no third-party origin and renders event data as text only.
_CSP = (
    "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline' 'self'; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'"
)


@router.get("/")
async def console() -> HTMLResponse:
    """The console page."""
    page = resources.files("crisis.console").joinpath("index.html").read_text()
    return HTMLResponse(page, headers={"Content-Security-Policy": _CSP, "X-Frame-Options": "DENY"})


@router.get("/console/config.json")
async def console_config(settings: SettingsDep) -> dict[str, str]:
    """Where the console finds the live stream."""
    url = settings.public_stream_url or f"ws://{settings.gateway_host}:{settings.gateway_port}/v1/stream"
    return {"stream_url": url}
