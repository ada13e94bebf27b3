"""Review submission: decode → validate → check the delegated signature → verify proofs → bind → store → enqueue.

The bytes the reviewer signed (EAS ``data``) are the bytes we decode and later attest: nothing is re-encoded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address

from service.chain.codec import decode_review, encode_review
from service.chain.publisher import DelegatedRequest
from service.dids import did_address, normalize_did
from service.domain import Reason, Review
from service.errors import BindingFailed, MalformedInput
from service.store.engine import session_scope
from service.store.outbox import find_by_content_key, next_inflight_nonce
from service.store.reviews import ReceiptAlreadyClaimed, claim_receipts, live_review_for
from service.store.tables import OutboxRow, ProofRow, ReviewRow
from service.workflows.aggregates import apply_review_change
from service.workflows.evaluate import ReviewVerdict, evaluate_review, is_self_review, raise_for_problem
from service.workflows.evidence import keep_evidence
from service.workflows.runtime import Runtime
from service.workflows.validation import validate_review


@dataclass(frozen=True, slots=True)
class Prepared:
    typed_data: dict[str, Any]
    data: bytes
    recipient: str


def normalize_address(value: str) -> str:
    """Lower-case 0x address.

    Raises:
        MalformedInput: not a 20-byte hex address.
    """
    try:
        return to_checksum_address(value).lower()
    except (ValueError, TypeError) as exc:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, f"not an address: {value!r}") from exc


def prepare_review(*, rt: Runtime, attester: str, review: Review, deadline: int) -> Prepared:
    """Build the EAS ``Attest`` typed data the reviewer signs.

    Raises:
        MalformedInput: the review breaks a schema rule or the attester is not an address.
        ChainUnavailable: the nonce could not be read.
    """
    attester = normalize_address(attester)
    validate_review(review=review)
    data = encode_review(review=review)
    recipient = did_address(review.subject)
    typed = rt.eas.build_attest_typed_data(
        attester=to_checksum_address(attester),
        data=data,
        recipient=recipient,
        deadline=deadline,
        nonce=expected_nonce(rt=rt, attester=attester),
    )
    return Prepared(typed_data=typed, data=data, recipient=recipient)


def expected_nonce(*, rt: Runtime, attester: str) -> int:
    """The EAS nonce the attester's next request must carry: the chain's, or one past their requests still
    waiting in the outbox (they land in order).

    Raises:
        ChainUnavailable: the nonce could not be read.
    """
    chain_nonce = rt.eas.get_nonce(attester=to_checksum_address(attester))
    with session_scope(rt.engine) as session:
        inflight = next_inflight_nonce(session, attester=attester)
    return max(chain_nonce, inflight or 0)


def submit_review(*, rt: Runtime, attester: str, data: bytes, deadline: int, nonce: int, signature: str) -> str:
    """Accept a signed review and enqueue it for publishing. Returns the review id (existing id when the same
    signed request was already accepted).

    Raises:
        MalformedInput: undecodable data or a schema rule broken (422).
        ChainRejected: delegated signature wrong, expired, or nonce not current (422).
        CheckFailed / BindingFailed: a proof is invalid or does not back this review (422);
            ``RECEIPT_REPLAYED`` when a receipt already backs another live review (409).
        CouldNotCheck: a look-up (DID document, DNS, RPC) failed; nothing stored (503).
    """
    attester = normalize_address(attester)
    review = decode_review(data=data)
    if encode_review(review=review) != data:
        raise MalformedInput(Reason.ATTESTATION_DATA_INVALID, "data is not in canonical ABI encoding")
    validate_review(review=review)
    now = int(rt.clock())
    recipient = did_address(review.subject)
    request = DelegatedRequest(
        attester=to_checksum_address(attester),
        recipient=recipient,
        data=data,
        deadline=deadline,
        nonce=nonce,
        signature=bytes.fromhex(signature.removeprefix("0x")),
    )
    key = rt.eas.content_key(request=request)
    with session_scope(rt.engine) as session:
        existing = find_by_content_key(session, content_key=key)
        if existing is not None:
            return existing.review_id
    rt.eas.check_delegated(request=request, now=now, expected_nonce=expected_nonce(rt=rt, attester=attester))

    verdict = evaluate_review(
        review=review,
        attester=attester,
        review_time=now,
        now=now,
        resolver=rt.resolver,
        controllers=rt.controllers,
        policy=rt.policy,
    )
    raise_for_problem(verdict)
    if is_self_review(attester=attester, verdict=verdict):
        raise BindingFailed(Reason.SELF_REVIEW, "the reviewer signed a proof of this review or is its payTo")

    subject_normalized = normalize_did(review.subject)
    review_id = uuid.uuid4().hex
    try:
        with session_scope(rt.engine) as session:
            previous = live_review_for(session, attester=attester, subject_normalized=subject_normalized)
            row = ReviewRow(
                id=review_id,
                subject=review.subject,
                subject_normalized=subject_normalized,
                did_address=recipient,
                attester=attester,
                version=review.version,
                rating_value=review.rating_value,
                review_body=review.review_body,
                screenshot_urls=list(review.screenshot_urls),
                proofs_json=list(review.proofs),
                data_hex="0x" + data.hex(),
                review_time=now,
                source="api",
                verified_purchase=verdict.verified_purchase,
                evidence=verdict.evidence,
                created_at=now,
            )
            session.add(row)
            session.flush()
            if previous is not None:
                previous.superseded_by = review_id
                session.add(previous)
            claim_receipts(
                session,
                replay_keys=verdict.receipt_keys(),
                review=row,
                superseding=previous.id if previous else None,
            )
            add_proof_rows(session, review_id=review_id, verdict=verdict, rt=rt)
            session.add(
                OutboxRow(
                    content_key=key,
                    review_id=review_id,
                    attester=attester,
                    recipient=recipient,
                    data_hex="0x" + data.hex(),
                    deadline=deadline,
                    nonce=str(nonce),
                    signature="0x" + request.signature.hex(),
                    created_at=now,
                    updated_at=now,
                )
            )
            apply_review_change(session, added=row, removed=previous, now=now)
    except ReceiptAlreadyClaimed as exc:
        raise BindingFailed(Reason.RECEIPT_REPLAYED, f"this receipt already backs review {exc.review_id}") from exc
    rt.publisher_wakeup()
    return review_id


def add_proof_rows(session: Any, *, review_id: str, verdict: ReviewVerdict, rt: Runtime) -> None:
    """Insert one ProofRow per proof and keep the DID documents that authorized them as evidence snapshots."""
    for p in verdict.proofs:
        o = p.outcome
        session.add(
            ProofRow(
                review_id=review_id,
                position=p.position,
                proof_type=p.proof_type[:64],
                status=o.status.value,
                reason=reason.value if (reason := p.binding_reason or o.reason) else None,
                kind=o.kind.value if o.kind else None,
                format=o.format.value if o.format else None,
                signature_valid=o.signature_valid,
                signer=o.signer,
                tier=o.tier.value if o.tier else None,
                replay_key=o.replay_key,
                bound=p.bound,
                issued_at=p.issued_at,
                checked_at=o.checked_at,
                evidence_hash=o.evidence_hash,
                detail=o.detail[:500],
            )
        )
        if o.evidence_hash and p.artifact is not None:
            keep_evidence(session, evidence_hash=o.evidence_hash, artifact=p.artifact, rt=rt)
