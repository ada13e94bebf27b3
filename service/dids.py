"""Pure DID string helpers shared by every domain package: did:web ⇄ URL, subject normalization, DID Address."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

from eth_hash.auto import keccak

from service.domain import Reason
from service.errors import MalformedInput

_DID_RE = re.compile(r"^did:[a-z0-9]+:.+$")
_BARE_PORT = re.compile(r"^(did:web:[^:%]+):(\d{1,5})$")


def is_did(value: str) -> bool:
    """True when ``value`` has the ``did:<method>:<id>`` shape (schema userreview 1.3.0)."""
    return bool(_DID_RE.match(value)) and len(value) <= 256


def parse_subject(value: str) -> str:
    """A service DID as a person types it or a path carries it (already percent-decoded once), read the one way the
    API and the CLI both read it: ``did:web:host:<digits>`` (a port written with a bare colon) becomes
    ``did:web:host%3A<digits>``. Normalize the result with :func:`normalize_did` before comparing subjects.

    Raises:
        MalformedInput: INVALID_SUBJECT when ``value`` is not a ``did:<method>:<id>`` of at most 256 characters.
    """
    did = _BARE_PORT.sub(r"\1%3A\2", value)
    if not did.startswith("did:") or len(did) > 256 or not is_did(did):
        raise MalformedInput(Reason.INVALID_SUBJECT, "not a DID (did:<method>:<id>, at most 256 characters)")
    return did


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
    hostname, port = url_host_port(url)
    host = hostname if port is None else f"{hostname}%3A{port}"
    return f"did:web:{host}"


# The characters url_host_port lets a host hold: ``\w`` is exactly ``str.isalnum()`` (any script) and ``_``,
# then ``.`` and ``-`` (precompiled: this runs for every proof re-verified).
_DNS_NAME_CHARS = re.compile(r"[\w.-]+")


def url_host_port(url: str) -> tuple[str, int | None]:
    """``https://Api.Example.com.:8443/x`` → ``("api.example.com", 8443)``; the port is None when not written.

    The one place a URL's host and port are read: ``urllib`` raises a bare ``ValueError`` for a port like
    ``%31%38`` or ``99999`` and for a broken ``[`` literal, and chain data may hold any of these.

    Raises:
        MalformedInput: BAD_FIELD_VALUE when the URL does not parse, has no host, a host with characters a DNS
            name cannot hold, or a port that is not 1-65535 written in ASCII digits.
    """
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "resourceUrl is not a URL") from None
    if not hostname:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "resourceUrl has no host")
    hostname = hostname.lower().rstrip(".")
    if not _DNS_NAME_CHARS.fullmatch(hostname):
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "resourceUrl host is not a DNS name")
    port_text = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    if not port_text:  # no port, or an empty one (RFC 3986 allows ``host:``)
        return hostname, None
    if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "resourceUrl port is not a number from 1 to 65535")
    return hostname, int(port_text)


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
