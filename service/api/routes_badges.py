"""Reputation badges for a service's own site or README: ``/badges/{did}.svg`` and ``/badges/{did}.json``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from service.api import pages
from service.api.badges import badge_svg, shields_json
from service.api.caching import cached
from service.api.deps import RuntimeDep
from service.api.did_path import did_from_path
from service.api.routes_pages import SECURITY_HEADERS, error_page, profiles
from service.dids import normalize_did
from service.errors import MalformedInput
from service.workflows.reputation import reputation
from service.workflows.service_info import service_profile

router = APIRouter(tags=["badges"])
SVG_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}
SHIELDS_EXAMPLE = {
    "schemaVersion": 1,
    "label": "OMATrust",
    "message": "84/100 · 4.6★ · 12 paid",
    "color": "brightgreen",
    "cacheSeconds": 300,
}
BADGE_MAX_AGE = 300
DidFile = Annotated[str, Path(max_length=270, description="percent-encoded service DID")]


@router.get(
    "/badges/{did}.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {"example": "<svg …>…</svg>"}}}, 422: {"description": "not a DID"}},
)
def badge(
    did: DidFile, request: Request, rt: RuntimeDep, theme: Annotated[Literal["light", "dark"], Query()] = "light"
) -> Response:
    """An SVG badge: trust score, average stars and payment-backed review count ("not enough reviews" until
    there is evidence). Cached for 5 minutes (ETag)."""
    subject = normalize_did(did_from_path(request, after="badges", suffix=".svg"))
    svg = badge_svg(score=reputation(rt=rt, did=subject).score, theme=theme)
    return cached(request, svg.encode(), media_type="image/svg+xml", headers=SVG_HEADERS, max_age=BADGE_MAX_AGE)


@router.get(
    "/badges/{did}.json",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {"example": SHIELDS_EXAMPLE}}},
        422: {"description": "not a DID"},
    },
)
def badge_endpoint(did: DidFile, request: Request, rt: RuntimeDep) -> Response:
    """The same badge in the shields.io endpoint format: `https://img.shields.io/endpoint?url=<this URL>`."""
    subject = normalize_did(did_from_path(request, after="badges", suffix=".json"))
    body = shields_json(score=reputation(rt=rt, did=subject).score)
    return cached(request, body.encode(), media_type="application/json", max_age=BADGE_MAX_AGE)


@router.get("/badges/{did}", response_class=Response, include_in_schema=False)
def badge_preview(did: DidFile, request: Request, rt: RuntimeDep) -> Response:
    """The badge in both themes, with copy-ready snippets to embed it."""
    try:
        subject = normalize_did(did_from_path(request, after="badges"))
    except MalformedInput as exc:
        return error_page(422, f"Not a service DID: {exc.detail}")
    profile = service_profile(rt=rt, did=subject, cache=profiles(request), fetch=False)
    body = pages.badge_page(did=subject, profile=profile, base_url=str(request.base_url).rstrip("/"))
    return cached(request, body.encode(), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)
