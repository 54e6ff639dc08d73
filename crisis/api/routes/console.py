"""The duty console: static HTML, CSS and ES modules shipped in the package, served by the API."""

from __future__ import annotations

import re
from importlib import resources
from typing import Final
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from crisis.api.deps import SettingsDep
from crisis.api.problems import problem_response
from crisis.config import Settings

router = APIRouter(include_in_schema=False)

# No inline script or style and no third-party origin: the page renders every server string as text, and
# this policy makes an injected <script> or style attribute inert even if that ever slipped. The only other
# origin it may reach is the gateway's, for the stream.
_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' {stream}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS: Final = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# Asset names are checked against this pattern before the package is asked for them: no path ever reaches it.
_ASSET: Final = re.compile(r"[a-z][a-z0-9_]{0,40}\.(js|css)")
_TYPES: Final = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}


def stream_url(settings: Settings) -> str:
    return settings.public_stream_url or f"ws://{settings.gateway_host}:{settings.gateway_port}/v1/stream"


def headers(settings: Settings) -> dict[str, str]:
    parts = urlsplit(stream_url(settings))
    # A stream behind the same origin (a path alone) is covered by 'self'.
    stream = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return {
        "Content-Security-Policy": _POLICY.format(stream=stream).replace("'self' ;", "'self';"),
        **_HEADERS,
    }


@router.get("/")
async def console(settings: SettingsDep) -> HTMLResponse:
    """The console page."""
    page = resources.files("crisis.console").joinpath("index.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers=headers(settings))


@router.get("/console/config.json")
async def console_config(settings: SettingsDep) -> dict[str, str]:
    """Where the console finds the live stream."""
    return {"stream_url": stream_url(settings)}


@router.get("/console/assets/{name}")
async def console_asset(name: str, settings: SettingsDep) -> Response:
    """One of the console's scripts or stylesheets."""
    match = _ASSET.fullmatch(name)
    asset = resources.files("crisis.console").joinpath(name) if match else None
    if match is None or asset is None or not asset.is_file():
        return problem_response(404, "no such console file", code="not_found")
    return Response(asset.read_bytes(), media_type=_TYPES[match.group(1)], headers=headers(settings))
