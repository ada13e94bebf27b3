"""Reading one attestation from the chain, joined with the review we store for it (``GET /v1/attestations/{uid}``,
``omatrust attestation UID``). The chain is the source: a UID the chain does not have is not found, whatever the
store says."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from service.chain.codec import decode_review
from service.chain.eas_reads import AttestationRecord
from service.domain import Review
from service.errors import MalformedInput
from service.store.engine import session_scope
from service.store.reviews import get_review_by_uid
from service.workflows.runtime import Runtime


@dataclass(frozen=True, slots=True)
class AttestationView:
    record: AttestationRecord
    review: Review | None
    review_error: str | None
    review_id: str | None
    chain_id: int
    eas: str


def read_attestation(*, rt: Runtime, uid: str) -> AttestationView | None:
    """The attestation ``uid`` (0x + 64 hex) as the chain has it, its User Review decoded when it is one, and the id
    of our stored review carrying that UID. None when the chain has no such attestation.

    Raises:
        ChainUnavailable: RPC failure.
    """
    record = rt.eas.get_attestation(uid=uid)
    if record is None:
        return None
    review: Review | None = None
    error: str | None = None
    if record.schema.lower() == rt.eas.schema_uid.lower():
        try:
            review = decode_review(data=record.data)
        except MalformedInput as exc:
            error = exc.reason.value
    else:
        error = "schema-mismatch"
    with session_scope(rt.engine) as session:
        row = get_review_by_uid(session, uid=record.uid.lower())
        review_id = row.id if row is not None else None
    return AttestationView(
        record=record,
        review=review,
        review_error=error,
        review_id=review_id,
        chain_id=rt.eas.chain_id,
        eas=rt.eas.eas_address,
    )


def attestation_json(view: AttestationView) -> dict[str, Any]:
    """The wire form (camelCase), shared by the API and the CLI."""
    r = view.record
    review = None
    if view.review is not None:
        proofs: list[Any] = []
        for p in view.review.proofs:
            try:
                proofs.append(json.loads(p))
            except ValueError:
                proofs.append(p)
        review = {
            "subject": view.review.subject,
            "version": view.review.version,
            "ratingValue": view.review.rating_value,
            "reviewBody": view.review.review_body,
            "screenshotUrls": list(view.review.screenshot_urls),
            "proofs": proofs,
        }
    return {
        "uid": r.uid,
        "chainId": view.chain_id,
        "eas": view.eas,
        "schema": r.schema,
        "attester": r.attester,
        "recipient": r.recipient,
        "time": r.time,
        "expirationTime": r.expiration_time,
        "revocationTime": r.revocation_time,
        "revoked": r.revocation_time != 0,
        "revocable": r.revocable,
        "refUid": r.ref_uid,
        "data": "0x" + r.data.hex(),
        "review": review,
        "reviewError": view.review_error,
        "reviewId": view.review_id,
    }
