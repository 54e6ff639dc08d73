"""What the generated OpenAPI document says beyond FastAPI's defaults, for code generators.

Readable operation ids (the route function's name: `open_crisis`, not `open_crisis_v1_crises_post`), the
bearer scheme on every operation that needs a key, and the shape of one indicator in a batch (the route
validates items one by one, so the model itself takes any JSON value).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from crisis.domain.indicators import IndicatorIn

BEARER = "bearer"


# Route functions whose name alone would be vague in a generated client.
_RENAMED = {
    "share": "share_indicators",
    "transition": "transition_crisis",
    "retract": "retract_indicator",
    "report": "get_report",
    "metrics": "get_metrics",
}


def operation_id(route: APIRoute) -> str:
    return _RENAMED.get(route.name, route.name)


def document(app: FastAPI) -> None:
    """Add the security scheme and the batch item's schema when the document is first built."""
    previous = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = previous()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})[BEARER] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `crisis keys add`, as `Authorization: Bearer <key>`.",
        }
        # Every /v1 operation takes the caller from the key (PrincipalDep); /livez, /readyz, /metrics
        # and the console do not.
        for path, operations in schema.get("paths", {}).items():
            if path.startswith("/v1/"):
                for operation in operations.values():
                    operation["security"] = [{BEARER: []}]
        _type_batch_items(components.setdefault("schemas", {}))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _type_batch_items(schemas: dict[str, Any]) -> None:
    batch = schemas.get("IndicatorBatch")
    if batch is None:
        return
    item = IndicatorIn.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(item.pop("$defs", {}))
    schemas["IndicatorIn"] = item
    batch["properties"]["indicators"]["items"] = {"$ref": "#/components/schemas/IndicatorIn"}
