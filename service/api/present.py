"""Stored rows → API resources."""

from __future__ import annotations

from collections.abc import Sequence

from service.api.schemas import AttestationOut, ProofOut, ReviewOut
from service.store.tables import OutboxRow, ProofRow, ReviewRow


def attestation_of(review: ReviewRow, outbox: OutboxRow | None) -> AttestationOut:
    if review.attestation_uid:
        return AttestationOut(state="confirmed", uid=review.attestation_uid, tx_hash=outbox.tx_hash if outbox else None)
    if outbox is None:
        return AttestationOut(state="pending", uid=None, tx_hash=None)
    state = outbox.state if outbox.state in ("pending", "submitted", "confirmed", "failed") else "pending"
    return AttestationOut(
        state=state,  # type: ignore[arg-type]
        uid=outbox.uid,
        tx_hash=outbox.tx_hash,
        error=outbox.last_error if state == "failed" else None,
    )


def review_out(review: ReviewRow, proofs: Sequence[ProofRow], outbox: OutboxRow | None) -> ReviewOut:
    return ReviewOut(
        id=review.id,
        subject=review.subject,
        subject_normalized=review.subject_normalized,
        did_address=review.did_address,
        attester=review.attester,
        version=review.version,
        rating_value=review.rating_value,
        review_body=review.review_body,
        screenshot_urls=list(review.screenshot_urls),
        review_time=review.review_time,
        source="chain" if review.source == "chain" else "api",
        verified_purchase=review.verified_purchase,
        evidence=review.evidence,
        superseded_by=review.superseded_by,
        proofs=[
            ProofOut(
                position=p.position,
                proof_type=p.proof_type,
                status=p.status,  # type: ignore[arg-type]
                reason=p.reason,
                kind=p.kind,  # type: ignore[arg-type]
                format=p.format,  # type: ignore[arg-type]
                signature_valid=p.signature_valid,
                signer=p.signer,
                tier=p.tier,
                bound=p.bound,
                replay_key=p.replay_key,
                issued_at=p.issued_at,
                checked_at=p.checked_at,
                evidence_hash=p.evidence_hash,
            )
            for p in proofs
        ],
        attestation=attestation_of(review, outbox),
    )
