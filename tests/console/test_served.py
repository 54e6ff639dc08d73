"""The console is served by the API, from the package, with a strict policy and no inline script."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

import httpx

from tests.conftest import Stack, every_adapter


@every_adapter
async def test_console_page_assets_and_stream_address(api_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=api_stack.api_url) as http:
        page = await http.get("/")
        script = await http.get("/console/assets/stream.js")
        style = await http.get("/console/assets/console.css")
        config = await http.get("/console/config.json")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self';" in policy and "unsafe" not in policy  # no inline script or style
    port = api_stack.settings.gateway_port
    assert f"connect-src 'self' ws://127.0.0.1:{port};" in policy  # the gateway, no other origin
    assert "<script>" not in page.text and " style=" not in page.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    assert '"auth", token' in script.text  # the browser path: a token message first, never a URL parameter
    assert config.json() == {"stream_url": f"ws://127.0.0.1:{port}/v1/stream"}


@every_adapter
async def test_only_the_console_files_are_served(api_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=api_stack.api_url) as http:
        for name in ("missing.js", "__init__.py", "..%2F..%2Fconfig.py", "index.html", "APP.JS"):
            answer = await http.get(f"/console/assets/{name}")
            assert answer.status_code == 404, name
            assert answer.headers["content-type"] == "application/problem+json"


def test_every_console_file_ships_in_the_package() -> None:
    # The wheel carries only what package-data names: a new kind of file would be missing when installed.
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["crisis.console"]
    shipped = [f.name for f in resources.files("crisis.console").iterdir() if f.name != "__pycache__"]
    for name in shipped:
        assert name == "__init__.py" or any(Path(name).match(p) for p in patterns), name
    # And every module the page imports is one of them.
    for module in resources.files("crisis.console").iterdir():
        if module.name.endswith(".js"):
            for imported in re.findall(r'from "\./([a-z_]+\.js)"', module.read_text()):
                assert imported in shipped, f"{module.name} imports {imported}"
