"""OpenAPI: every operation documents its problem+json error responses with one shared ``Problem`` schema."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `code` is the stable machine-readable reason.",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}

# Statuses any operation may answer with, whatever its own documentation says.
COMMON = {
    "400": "malformed request body",
    "413": "request body too large",
    "422": "request or content rejected (see `code`)",
    "429": "rate limited",
    "500": "internal error",
    "503": "a check could not run; retry after `Retry-After` seconds",
}
_PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = PROBLEM_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                for status, description in COMMON.items():
                    entry = responses.setdefault(status, {"description": description})
                    entry["content"] = _PROBLEM_CONTENT
                for status, entry in responses.items():
                    if status[0] in "45":
                        entry["content"] = _PROBLEM_CONTENT
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
