"""/docs works offline: the page and everything it loads come from the API, nothing from elsewhere."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Stack, every_adapter

pytestmark = every_adapter

_REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
_CSS_URLS = re.compile(r"""url\(\s*["']?([^"')]+)""")
_EXTERNAL = re.compile(r"""["'(]\s*(?:https?:)?//[a-z0-9.-]+""", re.IGNORECASE)


async def test_docs_and_every_asset_it_loads_come_from_the_api(api_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=api_stack.api_url) as http:
        page = await http.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "validatorUrl" in page.text  # no badge fetched from the validator's site
        assert not _EXTERNAL.search(page.text), _EXTERNAL.search(page.text)
        references = _REFERENCES.findall(page.text) + re.findall(r"url: '([^']+)'", page.text)
        assert len(references) >= 4  # stylesheet, icon, script, the OpenAPI document
        for reference in references:
            assert reference.startswith("/") and not reference.startswith("//"), reference
            asset = await http.get(reference)
            assert asset.status_code == 200, reference
            if reference.endswith(".css"):
                for url in _CSS_URLS.findall(asset.text):
                    assert url.startswith("data:"), url
        assert (await http.get("/openapi.json")).json()["info"]["title"] == "crisis-bus API"
        missing = await http.get("/docs/assets/swagger-ui-bundle.js.map")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
