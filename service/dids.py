"""Pure DID string helpers shared by every domain package: did:web ⇄ URL, subject normalization, DID Address."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

from eth_hash.auto import keccak

from service.domain import Reason
from service.errors import MalformedInput

_DID_RE = re.compile(r"^did:[a-z0-9]+:.+$")


def is_did(value: str) -> bool:
    """True when ``value`` has the ``did:<method>:<id>`` shape (schema userreview 1.3.0)."""
    return bool(_DID_RE.match(value)) and len(value) <= 256


def normalize_did(did: str, *, strip_www: bool = True) -> str:
    """Normalize a subject DID as OMATrust does before hashing it into a DID Address.

    did:web: trim, lower-case the host, drop a trailing ``.``, and (since April 2026) a leading ``www.``;
    path segments keep their case. Other methods: trimmed only. ``strip_www=False`` gives the older form.
    """
    did = did.strip()
    if not did.startswith("did:web:"):
        return did
    host, _, path = did[len("did:web:") :].partition(":")
    host = host.lower().rstrip(".")
    if strip_www and host.startswith("www."):
        host = host[4:]
    return f"did:web:{host}:{path}" if path else f"did:web:{host}"


def did_address(subject: str, *, strip_www: bool = True) -> str:
    """The EAS ``recipient`` for a subject: last 20 bytes of keccak256(utf8(normalized DID)), lower-case hex."""
    digest = keccak(normalize_did(subject, strip_www=strip_www).encode("utf-8"))
    return "0x" + digest[-20:].hex()


def did_address_candidates(subject: str) -> frozenset[str]:
    """Every DID Address a reader should accept for ``subject`` (current and pre-``www.``-rule normalization)."""
    return frozenset({did_address(subject), did_address(subject, strip_www=False)})


def did_web_for_url(url: str) -> str:
    """``https://api.example.com:8443/x`` → ``did:web:api.example.com%3A8443`` (host only; the service DID).

    Raises:
        MalformedInput: the URL has no host.
    """
    parts = urlsplit(url)
    if not parts.hostname:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, f"resourceUrl has no host: {url!r}")
    host = parts.hostname.lower().rstrip(".")
    if parts.port is not None:
        host = f"{host}%3A{parts.port}"
    return f"did:web:{host}"


def did_web_document_url(did: str, *, scheme: str = "https") -> str:
    """did:web → the URL of its did.json (``/.well-known/did.json`` for a bare host).

    Raises:
        MalformedInput: not a did:web, or an empty/IP-literal host.
    """
    if not did.startswith("did:web:"):
        raise MalformedInput(Reason.BAD_DID, f"not a did:web: {did!r}")
    segments = did[len("did:web:") :].split(":")
    host = unquote(segments[0]).lower()
    if not host or "/" in host or "@" in host or host.startswith("["):
        raise MalformedInput(Reason.BAD_DID, f"bad did:web host: {did!r}")
    hostname = host.rsplit(":", 1)[0]
    if re.fullmatch(r"[0-9.]+", hostname):
        raise MalformedInput(Reason.BAD_DID, "did:web does not allow IP-literal hosts")
    if len(segments) == 1:
        return f"{scheme}://{host}/.well-known/did.json"
    path = "/".join(quote(unquote(s), safe="") for s in segments[1:])
    return f"{scheme}://{host}/{path}/did.json"


def did_web_host(did: str) -> str:
    """The ``host[:port]`` part of a did:web (port colon decoded), lower-case."""
    return unquote(did[len("did:web:") :].split(":")[0]).lower()
