"""A service's display profile (name, URL, logo) from its did.json: fetched through the SSRF-safe resolver, else
the newest did.json snapshot stored when one of its receipts was verified, else nothing (the page shows the host).
Results — including "nothing" — are cached by the caller's cache so a dead host costs one fetch per TTL."""

from __future__ import annotations

from collections.abc import Sequence

from service.domain import ArtifactKind
from service.errors import OmaTrustError
from service.identity.cache import TtlCache
from service.identity.profile import ServiceProfile, read_profile
from service.proofs.parse import parse_artifact
from service.store.engine import session_scope
from service.store.snapshots import latest_snapshot
from service.workflows.runtime import Runtime


def document_did(did: str) -> str:
    """The form a did:web document carries as its ``id`` for a normalized subject: subject normalization lower-cases
    the host, percent-escape included (``%3a``), while documents (and ``did_web_for_url``) write ``%3A``."""
    return did.replace("%3a", "%3A") if did.startswith("did:web:") else did


def _load(*, rt: Runtime, did: str, fetch: bool) -> ServiceProfile:
    did = document_did(did)
    if fetch and did.startswith("did:web:") and rt.resolver is not None:
        try:
            return read_profile(raw=rt.resolver.resolve_document(did=did).raw)
        except OmaTrustError:
            pass  # unreachable or refused host: fall back to what we stored when it answered
    with session_scope(rt.engine) as session:
        snap = latest_snapshot(session, did=did)
        raw = snap.raw.encode("utf-8") if snap is not None else b""
    return read_profile(raw=raw) if raw else ServiceProfile()


def service_profile(
    *, rt: Runtime, did: str, cache: TtlCache[str, ServiceProfile], fetch: bool = True
) -> ServiceProfile:
    """The profile of the (normalized) service DID. ``fetch=False`` (listings): the cached or stored profile only,
    no network. Never raises for a look-up failure."""
    if not fetch:
        found, cached = cache.get(did)
        return cached if found and cached is not None else _load(rt=rt, did=did, fetch=False)
    return cache.get_or_load(did, lambda: _load(rt=rt, did=did, fetch=True))


def payment_transactions(*, proofs: Sequence[str]) -> tuple[str, ...]:
    """The payment transaction hashes the receipts among a review's stored proofs name (unparsable proofs skipped:
    their verdict is stored with the review; this only feeds the page's links)."""
    out = []
    for proof in proofs:
        try:
            artifact = parse_artifact(data=proof)
        except OmaTrustError:
            continue
        tx = getattr(artifact.payload, "transaction", "")
        if artifact.kind is ArtifactKind.RECEIPT and tx:
            out.append(tx)
    return tuple(dict.fromkeys(out))
