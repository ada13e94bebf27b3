"""Keep the evidence that authorized a signer, so re-verification can judge "as of issuedAt" later (formats:
``service.verdicts.evidence``)."""

from __future__ import annotations

from sqlmodel import Session

from service.dids import did_web_for_url
from service.domain import SignedArtifact
from service.errors import OmaTrustError
from service.store.snapshots import remember_snapshot
from service.verdicts.evidence import EvidenceText, controller_host, dns_evidence, document_evidence
from service.workflows.runtime import Runtime


def keep_evidence(session: Session, *, evidence_hash: str, artifact: SignedArtifact, rt: Runtime) -> bool:
    """Store the DID document or DNS answer whose hash is ``evidence_hash`` (both come from warm caches). Returns
    whether a snapshot was written (False: the evidence could not be found again)."""
    try:
        found = _evidence_for(artifact, evidence_hash=evidence_hash, rt=rt)
    except OmaTrustError:
        return False  # evidence is a convenience for audits; the outcome itself is already stored
    if found is None:
        return False
    keep_snapshot(session, evidence=found, now=int(rt.clock()))
    return True


def keep_snapshot(session: Session, *, evidence: EvidenceText, now: int) -> None:
    """Store one piece of evidence (once per hash)."""
    remember_snapshot(
        session, snapshot_hash=evidence.evidence_hash, did=evidence.did, kind=evidence.kind, raw=evidence.text, now=now
    )


def _evidence_for(artifact: SignedArtifact, *, evidence_hash: str, rt: Runtime) -> EvidenceText | None:
    did = did_web_for_url(artifact.payload.resource_url)
    if rt.resolver is not None:
        document = document_evidence(did=did, document=rt.resolver.resolve_document(did=did))
        if document.evidence_hash == evidence_hash:
            return document
    if rt.controllers is not None:
        record = rt.controllers.lookup(domain=controller_host(artifact.payload.resource_url))
        if record is not None:
            return dns_evidence(record)
    return None
