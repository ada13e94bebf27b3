"""HTTP caching for readers: a strong ETag over the exact body, ``If-None-Match`` → 304, and a short shared
``Cache-Control`` so a CDN may serve reputation, page and badge responses (a score moves slowly between writes)."""

from __future__ import annotations

import hashlib

from fastapi import Request, Response

# Seconds a shared cache may serve a response without asking again; stale-while-revalidate lets it answer at once
# while it re-checks (a 304 when the ETag still matches).
MAX_AGE_SECONDS = 30
STALE_SECONDS = 60


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(header: str | None, tag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 §13.1.2): W/"x" matches "x".
    return any(t.strip().removeprefix("W/") == tag for t in header.split(","))


def cached(
    request: Request,
    body: bytes,
    *,
    media_type: str,
    headers: dict[str, str] | None = None,
    max_age: int = MAX_AGE_SECONDS,
    status_code: int = 200,
) -> Response:
    """``body`` with ETag + Cache-Control, or an empty 304 when the client already holds it."""
    tag = etag_of(body)
    out = {
        **(headers or {}),
        "ETag": tag,
        "Cache-Control": f"public, max-age={max_age}, stale-while-revalidate={STALE_SECONDS}",
        "Vary": "Accept-Encoding",
    }
    if status_code == 200 and _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=out)
    return Response(body, status_code=status_code, media_type=media_type, headers=out)
