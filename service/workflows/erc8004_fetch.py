"""Fetching the files an ERC-8004 registry points at: agent registration files (``tokenURI``) and feedback files.

* ``https://`` → the SSRF-safe fetcher (public addresses only, no redirects, size-capped, deadline);
* ``ipfs://CID[/path]`` → ``{gateway}/ipfs/CID[/path]`` through the same fetcher (the gateway is configurable);
* ``data:[mediatype][;base64],…`` → decoded locally;
* anything else → ``fetch-scheme-refused``.

Every body is capped at ``max_bytes`` (``fetch-too-large``), whichever way it came.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_to_bytes

from service.domain import Reason
from service.errors import FetchFailed
from service.identity.fetcher import Fetcher


class UriFetcher:
    def __init__(self, *, fetcher: Fetcher, ipfs_gateway: str, max_bytes: int = 64 * 1024) -> None:
        self.fetcher = fetcher
        self.ipfs_gateway = ipfs_gateway.rstrip("/")
        self.max_bytes = max_bytes

    def url_for(self, uri: str) -> str | None:
        """The https URL fetched for ``uri`` (None for ``data:``)."""
        if uri.startswith("ipfs://"):
            return f"{self.ipfs_gateway}/ipfs/{uri.removeprefix('ipfs://').lstrip('/')}"
        if uri.startswith("data:"):
            return None
        return uri

    def fetch(self, *, uri: str) -> bytes:
        """The document at ``uri``.

        Raises:
            FetchFailed: FETCH_SCHEME_REFUSED (unsupported scheme, malformed data: URI), FETCH_TOO_LARGE, and the
                fetcher's reasons (FETCH_ADDRESS_REFUSED for private addresses, FETCH_HTTP_STATUS, FETCH_TIMEOUT…).
            LookupSaturated: too many fetches in flight.
        """
        if uri.startswith("data:"):
            body = _data_uri(uri, max_bytes=self.max_bytes)
        else:
            url = self.url_for(uri)
            if url is None or not url.startswith(("https://", "http://")):
                raise FetchFailed(Reason.FETCH_SCHEME_REFUSED, "only https, ipfs and data: URIs are fetched")
            body = self.fetcher.fetch(url=url)
        if len(body) > self.max_bytes:
            raise FetchFailed(Reason.FETCH_TOO_LARGE, f"more than {self.max_bytes} bytes")
        return body


def _data_uri(uri: str, *, max_bytes: int) -> bytes:
    header, comma, payload = uri.partition(",")
    if not comma:
        raise FetchFailed(Reason.FETCH_SCHEME_REFUSED, "malformed data: URI")
    # Bound the encoded text before decoding it (base64 is 4/3 of the bytes, percent-encoding at most 3/1).
    if len(payload) > (4 * max_bytes // 3 + 4 if header.endswith(";base64") else 3 * max_bytes):
        raise FetchFailed(Reason.FETCH_TOO_LARGE, f"data: URI over {max_bytes} bytes")
    try:
        if header.endswith(";base64"):
            return base64.b64decode(payload, validate=True)
        return unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise FetchFailed(Reason.FETCH_SCHEME_REFUSED, "malformed data: URI") from exc
