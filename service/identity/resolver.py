"""DID → document / JWS ``kid`` → key, with a TTL cache of successful did:web resolutions.

did:key and did:jwk are decoded locally (pure, never cached: decoding is cheaper than a lock). did:web documents
are fetched through a ``Fetcher`` and parsed by ``documents``; only parsed, valid documents are cached — a fetch
failure or a bad document is re-tried on the next call. Concurrent resolutions of one DID share a single fetch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from service.dids import did_web_document_url, did_web_host
from service.domain import DidDocument, Reason, VerificationKey
from service.errors import CouldNotCheck, MalformedInput, Unsupported
from service.identity.cache import TtlCache
from service.identity.didkey import is_self_contained, key_for_kid, self_contained_document
from service.identity.documents import ParsedDocument, find_key, read_did_document
from service.identity.fetcher import Fetcher


class DidResolver:
    """Resolves did:web (fetched), did:key and did:jwk (decoded).

    ``insecure_hosts`` (``host`` or ``host:port``, lower-case) are did:web hosts whose document is fetched over
    plain http, as the x402 SDK does for localhost — development only; pass the same set to ``SafeFetcher`` (which
    otherwise refuses http). Every other did:web is fetched over https.
    """

    def __init__(
        self,
        *,
        fetcher: Fetcher,
        ttl: float = 300,
        clock: Callable[[], float] = time.time,
        insecure_hosts: frozenset[str] = frozenset(),
        max_entries: int = 4096,
        failure_ttl: float = 0.0,
    ) -> None:
        self._fetcher = fetcher
        self._insecure_hosts = frozenset(h.lower() for h in insecure_hosts)
        self._cache: TtlCache[str, ParsedDocument] = TtlCache(ttl=ttl, clock=clock, max_entries=max_entries)
        # A did:web whose fetch could not be made (timeout, refused, saturated) is not fetched again for
        # ``failure_ttl`` seconds: the eight proofs of one review, and every request naming a stalling host,
        # share one failed attempt instead of each waiting out its own deadline. 0 disables it.
        self._failure_ttl = failure_ttl
        self._failures: TtlCache[str, CouldNotCheck] = TtlCache(ttl=max(failure_ttl, 0.0), clock=clock,
                                                                max_entries=max_entries)  # fmt: skip

    @property
    def fetcher(self) -> Fetcher:
        """The bounded, SSRF-safe fetcher documents are read with (also used for ``evidence-pointer`` documents)."""
        return self._fetcher

    def resolve_document(self, *, did: str) -> DidDocument:
        """The document of ``did`` (did:web fetched or from cache; did:key/did:jwk synthesized).

        Raises:
            MalformedInput: BAD_DID, DID_DOCUMENT_INVALID, DID_DOCUMENT_ID_MISMATCH (did:key/did:jwk: BAD_DID).
            Unsupported: UNSUPPORTED_DID_METHOD, UNSUPPORTED_KEY_TYPE (did:key/did:jwk).
            FetchFailed: the did.json could not be fetched (FETCH_* reasons; a CouldNotCheck).
        """
        if is_self_contained(did):
            return self_contained_document(did=did)
        return self._web(did).document

    def resolve_key(self, *, kid: str) -> tuple[VerificationKey, DidDocument]:
        """The verification key a JWS ``kid`` names, and the document it was found in.

        ``did:web:host#key-1`` matches the absolute id (relative ``#key-1`` ids in the document count);
        ``did:web:host`` without a fragment takes the first ``assertionMethod`` key, else the document's only key.
        ``did:key:z…`` / ``did:key:z…#z…`` and ``did:jwk:…`` / ``did:jwk:…#0`` name their embedded key.

        Raises:
            MalformedInput: KID_MISSING, BAD_DID, DID_DOCUMENT_INVALID, DID_DOCUMENT_ID_MISMATCH.
            Unsupported: UNSUPPORTED_DID_METHOD, UNSUPPORTED_KEY_TYPE.
            CheckFailed: KEY_NOT_FOUND.
            FetchFailed: as ``resolve_document``.
        """
        if not isinstance(kid, str) or not kid.strip():
            raise MalformedInput(Reason.KID_MISSING, "JWS header has no kid")
        did = kid.partition("#")[0]
        if is_self_contained(did):
            document = self_contained_document(did=did)
            return key_for_kid(document=document, kid=kid), document
        parsed = self._web(did)
        return find_key(parsed=parsed, kid=kid), parsed.document

    def prime(self, *, did: str, raw: bytes) -> DidDocument:
        """Cache ``raw`` as the current document of ``did`` (e.g. a stored snapshot for offline re-verification).

        Raises:
            MalformedInput: as ``read_did_document`` (nothing is cached then).
        """
        parsed = read_did_document(did=did, raw=raw)
        self._cache.put(did, parsed)
        return parsed.document

    def forget(self, *, did: str | None = None) -> None:
        """Drop one cached document, or all of them."""
        if did is None:
            self._cache.clear()
        else:
            self._cache.discard(did)

    def _web(self, did: str) -> ParsedDocument:
        if not did.startswith("did:"):
            raise MalformedInput(Reason.BAD_DID, f"not a DID: {did!r}")
        if not did.startswith("did:web:"):
            raise Unsupported(Reason.UNSUPPORTED_DID_METHOD, f"did:{did.split(':')[1]} is not resolved here")
        if any(c in did for c in "?/#\\") or any(c.isspace() for c in did):
            # a DID URL (query, path, fragment) or junk: never let it shape the fetched URL
            raise MalformedInput(Reason.BAD_DID, f"not a plain did:web: {did!r}")
        scheme = "http" if self._is_insecure(did) else "https"
        url = did_web_document_url(did, scheme=scheme)  # raises MalformedInput(BAD_DID) before any I/O

        if self._failure_ttl > 0:
            failed, recent = self._failures.get(did)
            if failed and recent is not None:
                raise type(recent)(recent.reason, f"{recent.detail} (failed moments ago; not retried yet)")

        def load() -> ParsedDocument:
            try:
                raw = self._fetcher.fetch(url=url)
            except CouldNotCheck as exc:
                if self._failure_ttl > 0:
                    self._failures.put(did, exc)
                raise
            return read_did_document(did=did, raw=raw)

        return self._cache.get_or_load(did, load)

    def _is_insecure(self, did: str) -> bool:
        host = did_web_host(did)
        return host in self._insecure_hosts or host.rsplit(":", 1)[0] in self._insecure_hosts
