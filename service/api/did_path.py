"""The service DID in a path segment, decoded exactly once.

Starlette decodes path parameters twice, which turns ``did:web:localhost%253A4021`` (an encoded
``did:web:localhost%3A4021``) into ``did:web:localhost:4021`` — another DID. So the segment is taken from the raw
path. Clients should percent-encode the DID (``encodeURIComponent``); for people typing URLs, an unencoded
``did:web:host:<digits>`` (a port written with a bare colon) is read as ``did:web:host%3A<digits>``.
"""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import Request

from service.dids import parse_subject
from service.domain import Reason
from service.errors import MalformedInput


def did_from_path(request: Request, *, after: str = "services", suffix: str = "") -> str:
    """The DID in the path segment after ``after`` (``suffix``, e.g. ``.svg``, removed first).

    Raises:
        MalformedInput: INVALID_SUBJECT when the segment is missing or not a DID.
    """
    raw = request.scope.get("raw_path") or request.url.path.encode()
    segments = raw.decode("latin-1").split("?", 1)[0].split("/")
    try:
        did = unquote(segments[segments.index(after) + 1], errors="strict")
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise MalformedInput(Reason.INVALID_SUBJECT, "no service DID in the path") from exc
    if suffix and did.endswith(suffix):
        did = did[: -len(suffix)]
    return parse_subject(did)
