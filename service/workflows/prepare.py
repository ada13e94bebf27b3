"""Preparing a review so that what the reviewer signs is what submit accepts.

Prepare runs every check submit runs that does not need the reviewer's signature — the same functions, so the same
problem codes: schema rules, the deadline, each proof's verdict (signature, authorization, binding: subject, payer,
freshness), self-review, receipt replay, the payment check. A bare x402 offer/receipt envelope put in ``proofs`` is
wrapped in the OMATrust proof wrapper first (the wrapped form is what gets signed and published), and a proof whose
``proofType`` this service does not verify is refused unless the caller opts in (it would be published for ever as
``unsupported``). Prepare writes nothing; submit checks everything again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from service.chain.delegation import check_deadline
from service.dids import normalize_did
from service.domain import Reason, Review
from service.errors import BindingFailed, OmaTrustError, Unsupported
from service.proofs import parse_artifact
from service.proofs.issuer import proof_wrapper
from service.store.engine import session_scope
from service.store.reviews import live_review_for, receipt_holder
from service.verdicts import ReviewVerdict, spec_for, validate_review
from service.verdicts.registry import CHAIN_PROOFS
from service.workflows.payment_check import start_chain_reads
from service.workflows.runtime import Runtime
from service.workflows.submit import Prepared, check_chain_evidence, check_proofs, normalize_address, prepare_review


@dataclass(frozen=True, slots=True)
class Checked:
    """A prepared review and what prepare found: ``wrapped`` proof positions, the evidence class submit will store."""

    prepared: Prepared
    review: Review
    wrapped: tuple[int, ...]
    evidence: str
    verified_purchase: bool


def wrap_bare_proofs(*, review: Review) -> tuple[Review, tuple[int, ...]]:
    """``review`` with every bare x402 envelope (a JSON object without ``proofType`` that parses as an x402 offer
    or receipt) replaced by its proof wrapper, serialized like any proof (compact JSON, key order kept); and the
    positions that were wrapped. Anything else is left as it is (its verdict says what is wrong with it)."""
    proofs: list[str] = []
    wrapped: list[int] = []
    for position, text in enumerate(review.proofs):
        try:
            obj = json.loads(text)
        except ValueError:
            proofs.append(text)
            continue
        if not isinstance(obj, dict) or "proofType" in obj:
            proofs.append(text)
            continue
        try:
            artifact = parse_artifact(data=obj)
        except OmaTrustError:
            proofs.append(text)
            continue
        wrapper = proof_wrapper(artifact=obj, kind=artifact.kind)
        proofs.append(json.dumps(wrapper, separators=(",", ":"), ensure_ascii=False))
        wrapped.append(position)
    return replace(review, proofs=tuple(proofs)), tuple(wrapped)


def refuse_unsupported(*, review: Review) -> None:
    """Raises Unsupported(UNSUPPORTED_PROOF_TYPE) for the first proof whose ``proofType`` names a type this service
    does not verify — what submit would accept and store as ``unsupported``. Proofs that are malformed are left to
    the verdict, which refuses them with the same code as submit."""
    for position, text in enumerate(review.proofs):
        try:
            obj = json.loads(text)
        except ValueError:
            continue
        proof_type = obj.get("proofType") if isinstance(obj, dict) else None
        if isinstance(proof_type, str) and spec_for(proof_type) is None and proof_type not in CHAIN_PROOFS:
            shown = proof_type
            raise Unsupported(
                Reason.UNSUPPORTED_PROOF_TYPE,
                f"proofs[{position}]: proofType {shown[:64]!r} is not verified here; it would be stored and "
                "published as 'unsupported' (pass allowUnsupported: true to publish it anyway)",
            )


def refuse_replay(*, rt: Runtime, attester: str, subject: str, verdict: ReviewVerdict) -> None:
    """Raises BindingFailed(RECEIPT_REPLAYED) when a receipt this review claims backs another live review (one the
    reviewer's own earlier review of this subject would hand over on supersession is fine, as at submit)."""
    with session_scope(rt.engine) as session:
        previous = live_review_for(session, attester=attester, subject_normalized=normalize_did(subject))
        for key in verdict.receipt_keys():
            holder = receipt_holder(session, replay_key=key)
            if holder is not None and (previous is None or holder != previous.id):
                raise BindingFailed(Reason.RECEIPT_REPLAYED, f"this receipt already backs review {holder}")


def prepare_checked(
    *, rt: Runtime, attester: str, review: Review, deadline: int, allow_unsupported: bool = False
) -> Checked:
    """Wrap bare proofs, run submit's signature-free checks, then build the typed data to sign.

    Raises:
        MalformedInput: a schema rule broken, or the attester is not an address (422).
        Unsupported: UNSUPPORTED_PROOF_TYPE without ``allow_unsupported`` (422).
        ChainRejected: DELEGATION_EXPIRED (422).
        CheckFailed / BindingFailed: a proof is invalid or does not back this review, self-review, a payment
            mismatch (422); RECEIPT_REPLAYED (409).
        CouldNotCheck: a look-up failed (503; retry).
    """
    attester = normalize_address(attester)
    review, wrapped = wrap_bare_proofs(review=review)
    validate_review(review=review)
    now = int(rt.clock())
    check_deadline(deadline=deadline, now=now)
    if not allow_unsupported:
        refuse_unsupported(review=review)
    start_chain_reads(review=review, payments=rt.payments)  # the payment reads overlap the proof checks
    verdict = check_proofs(rt=rt, attester=attester, review=review, now=now)
    refuse_replay(rt=rt, attester=attester, subject=review.subject, verdict=verdict)
    verdict, _ = check_chain_evidence(rt=rt, attester=attester, review=review, verdict=verdict, now=now)
    prepared = prepare_review(rt=rt, attester=attester, review=review, deadline=deadline)
    return Checked(
        prepared=prepared,
        review=review,
        wrapped=wrapped,
        evidence=verdict.evidence,
        verified_purchase=verdict.verified_purchase,
    )
