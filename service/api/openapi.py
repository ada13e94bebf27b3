"""OpenAPI: every operation documents its problem+json error responses with one shared ``Problem`` schema, every
body has an example, and the docs UIs (``/docs``, ``/redoc``) are served from local assets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from service.api.openapi_examples import add_examples

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
        "instance": {"type": "string", "description": "urn:omatrust:request:<id>, also in X-Correlation-Id"},
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


def _problem_content() -> dict[str, Any]:
    # A fresh dict per response: each status gets its own example.
    return {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


DOCS_ASSETS = "/docs-assets"
# The docs pages load their scripts and styles from this origin only (the CDN default is blank offline).
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; worker-src 'self' blob:; font-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
)


def _assets_dir() -> str:
    """Swagger UI and ReDoc bundles shipped inside the ``fastapi-offline`` wheel (pinned in pyproject)."""
    return str(Path(fastapi_offline.__file__).parent / "static")


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) and ``/redoc`` from local assets instead of FastAPI's CDN defaults."""
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in ("/docs", "/redoc")]
    app.mount(DOCS_ASSETS, StaticFiles(directory=_assets_dir()), name="docs-assets")
    headers = {"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff"}

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} — API",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
        )
        return HTMLResponse(page.body, headers=headers)

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} — reference",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        return HTMLResponse(page.body, headers=headers)


def install(app: FastAPI) -> None:
    install_docs(app)

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
                    responses.setdefault(status, {"description": description})
                for status, entry in responses.items():
                    if status[0] in "45":  # COMMON's included
                        entry["content"] = _problem_content()
        add_examples(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
