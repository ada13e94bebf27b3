"""Stored rows → API resources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fastapi import Response
from pydantic import BaseModel

from service.api.schemas import AttestationOut, PaymentOut, ProofOut, ResponseOut, ReviewOut
from service.store.tables import OmatrustAttestationRow, OutboxRow, ProofRow, ReviewRow
from service.verdicts.registry import PAYMENT_BACKED


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


def _response_out(row: OmatrustAttestationRow) -> ResponseOut:
    body = str(row.fields.get("response_body", ""))
    return ResponseOut(uid=row.uid, attester=row.attester, response_body=body, time=row.attestation_time)


def review_out(
    review: ReviewRow,
    proofs: Sequence[ProofRow],
    outbox: OutboxRow | None,
    responses: Sequence[OmatrustAttestationRow] = (),
) -> ReviewOut:
    return ReviewOut(
        responses=[_response_out(r) for r in responses],
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
        payment_backed=review.evidence == PAYMENT_BACKED,
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
                payment=PaymentOut.model_validate(p.payment) if p.payment else None,
            )
            for p in proofs
        ],
        attestation=attestation_of(review, outbox),
    )


def json_response(model: BaseModel, *, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """``model`` as the JSON body FastAPI would send for it as a ``response_model`` (camelCase aliases), rendered
    by pydantic in one step. A route returning this skips FastAPI's re-validation of the returned model (for a
    sync route: one more thread-pool hop) and its dict → JSON encoding; declare ``response_model`` on the route
    all the same so the OpenAPI document still describes the body."""
    return Response(content=model.model_dump_json(by_alias=True), status_code=status_code, headers=headers,
                    media_type="application/json")  # fmt: skip
