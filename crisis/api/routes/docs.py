"""/docs: Swagger UI served from the API itself, so the page works where no CDN can be reached."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

router = APIRouter(include_in_schema=False)

ASSETS: Final = "/docs/assets"
# Only the files the page loads: the bundle ships source maps and other builds we never serve.
_FILES: Final = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


# HEAD as well, as Starlette serves it on the page FastAPI would have made (a link checker asks with it).
@router.api_route("/docs", methods=["GET", "HEAD"])
async def swagger_ui() -> HTMLResponse:
    """The interactive API reference (Swagger UI), with every asset from this server."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="crisis-bus API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        # Swagger UI would otherwise load a validity badge from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.api_route(ASSETS + "/{name}", methods=["GET", "HEAD"])
async def swagger_asset(name: str) -> FileResponse:
    """One of Swagger UI's static files."""
    media_type = _FILES.get(name)
    if media_type is None:
        raise HTTPException(404, f"no asset {name}")
    # Cached for a day: the files change only when the pinned swagger-ui-bundle does.
    headers = {"Cache-Control": "public, max-age=86400"}
    return FileResponse(Path(str(swagger_ui_path)) / name, media_type=media_type, headers=headers)
