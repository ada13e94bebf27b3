"""What a service says about itself in its did.json: display name, home URL, logo. Pure: bytes in, values out.

DID Core has no name/logo fields; documents may carry extra properties. Read, in order:
- ``name``: top-level ``"name"``, else the ``name`` of the first ``service`` entry that has one;
- ``url``: the first ``service`` entry whose ``serviceEndpoint`` is an ``https://`` (or ``http://``) URL, preferring
  type ``LinkedDomains``; else none (the page then shows the host);
- ``logo``: top-level ``"logo"`` (or a service entry's ``logo``) only when it is a ``data:image/…;base64,`` URI of
  at most ``MAX_LOGO_CHARS`` — the page loads nothing from elsewhere, so a remote logo URL is ignored.
Every value is length-limited; anything else is ignored, never an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_NAME_CHARS = 80
MAX_URL_CHARS = 256
MAX_LOGO_CHARS = 24_000
_LOGO = re.compile(r"^data:image/(png|jpeg|webp|gif|svg\+xml);base64,[A-Za-z0-9+/]+={0,2}$")
_URL = re.compile(r"^https?://[^\s<>\"']+$")


@dataclass(frozen=True, slots=True)
class ServiceProfile:
    name: str | None = None
    url: str | None = None
    logo: str | None = None


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value[:limit] if value else None


def _logo(value: Any) -> str | None:
    if isinstance(value, str) and len(value) <= MAX_LOGO_CHARS and _LOGO.match(value):
        return value
    return None


def _endpoint(entry: dict[str, Any]) -> str | None:
    ep = entry.get("serviceEndpoint")
    if isinstance(ep, dict):  # {"origins": [...]} form of LinkedDomains
        origins = ep.get("origins")
        ep = origins[0] if isinstance(origins, list) and origins else None
    if isinstance(ep, list):
        ep = ep[0] if ep else None
    if isinstance(ep, str) and len(ep) <= MAX_URL_CHARS and _URL.match(ep):
        return ep
    return None


def read_profile(*, raw: bytes) -> ServiceProfile:
    """The profile in a did.json's bytes (all fields None when there is none or the bytes are not a JSON object)."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ServiceProfile()
    if not isinstance(doc, dict):
        return ServiceProfile()
    listed = doc.get("service")
    services = [s for s in listed if isinstance(s, dict)] if isinstance(listed, list) else []
    name = _text(doc.get("name"), MAX_NAME_CHARS)
    logo = _logo(doc.get("logo"))
    for s in services:
        name = name or _text(s.get("name"), MAX_NAME_CHARS)
        logo = logo or _logo(s.get("logo"))
    linked = [s for s in services if s.get("type") == "LinkedDomains"]
    url = next((u for s in [*linked, *services] if (u := _endpoint(s))), None)
    return ServiceProfile(name=name, url=url, logo=logo)
