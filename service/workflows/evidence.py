"""Keep the evidence that authorized a signer, so re-verification can judge "as of issuedAt" later."""

from __future__ import annotations

from sqlmodel import Session

from service.dids import did_web_for_url, did_web_host
from service.domain import SignedArtifact
from service.errors import OmaTrustError
from service.store.snapshots import remember_snapshot
from service.workflows.runtime import Runtime


def keep_evidence(session: Session, *, evidence_hash: str, artifact: SignedArtifact, rt: Runtime) -> None:
    """Store the DID document or DNS answer whose hash is ``evidence_hash`` (both come from warm caches)."""
    did = did_web_for_url(artifact.payload.resource_url)
    now = int(rt.clock())
    try:
        if rt.resolver is not None:
            doc = rt.resolver.resolve_document(did=did)
            if doc.snapshot_hash == evidence_hash:
                remember_snapshot(
                    session, snapshot_hash=evidence_hash, did=did, kind="did-document",
                    raw=doc.raw.decode("utf-8", "replace"), now=now,
                )  # fmt: skip
                return
        if rt.controllers is not None:
            record = rt.controllers.lookup(domain=did_web_host(did).split(":")[0])
            if record is not None:
                remember_snapshot(
                    session, snapshot_hash=evidence_hash, did=did, kind="dns-txt",
                    raw="\n".join([record.record_name, *record.controllers]), now=now,
                )  # fmt: skip
    except OmaTrustError:
        return  # evidence is a convenience for audits; the outcome itself is already stored
