"""Evaluate every proof of a review and decide what it proves: the shared core of submit, sync and reverify.

Offers are checked first so a receipt signer can be authorized as the ``payTo`` of a signed offer in the same review.
Receipt binding (subject, payer == attester, freshness) is checked for every receipt whose signature is valid;
replay (one receipt per live review) is enforced by the store when the review is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from service.domain import ArtifactKind, OfferPayload, ProofOutcome, ProofStatus, Reason, Review, SignedArtifact
from service.errors import BindingFailed, CheckFailed, CouldNotCheck
from service.identity.dns import ControllerResolver
from service.identity.resolver import DidResolver
from service.proofs import check_binding
from service.workflows.verify import OFFER_TRUST_TIERS, check_artifact

REVIEW_PROOF_TYPES = {"x402-receipt": ArtifactKind.RECEIPT, "x402-offer": ArtifactKind.OFFER}


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    """Receipt freshness policy (PROTOCOLS.md §5: unspecified upstream, ours and configurable)."""

    receipt_max_age: int = 30 * 24 * 3600
    clock_skew: int = 300


@dataclass(frozen=True, slots=True)
class ProofEvaluation:
    position: int
    proof_type: str
    outcome: ProofOutcome
    artifact: SignedArtifact | None
    issued_at: int | None  # receipt issuedAt, for "as of issuedAt" re-verification
    bound: bool
    binding_reason: Reason | None


@dataclass(frozen=True, slots=True)
class ReviewVerdict:
    proofs: tuple[ProofEvaluation, ...]
    verified_purchase: bool
    evidence: str  # scoring evidence class: verified | unauthorized | offer-only | none

    def receipt_keys(self) -> list[str]:
        """Replay keys of the receipts bound to this review (payer == attester, subject, fresh). Only those claim:
        a receipt attached by someone who is not its payer must not block the payer's own review."""
        return [
            p.artifact.replay_key
            for p in self.proofs
            if p.artifact is not None and p.artifact.kind is ArtifactKind.RECEIPT and p.bound
        ]

    def first_problem(self) -> ProofEvaluation | None:
        """The first proof that makes a submission unacceptable (invalid, indeterminate or unbound), if any."""
        for p in self.proofs:
            if p.outcome.status in (ProofStatus.INVALID, ProofStatus.INDETERMINATE):
                return p
        for p in self.proofs:
            if p.binding_reason is not None:
                return p
        return None


def _proof_type(raw: str) -> tuple[str, Any]:
    try:
        obj = json.loads(raw)
    except ValueError:
        return "", None
    if isinstance(obj, dict):
        return str(obj.get("proofType", "")), obj
    return "", obj


def evaluate_review(
    *,
    review: Review,
    attester: str,
    review_time: int,
    now: int,
    resolver: DidResolver | None,
    controllers: ControllerResolver | None,
    policy: ReviewPolicy,
) -> ReviewVerdict:
    """Verify every proof of ``review`` and bind receipts to it. Never raises for a bad proof: bad proofs get
    outcomes. Raises only on programming errors."""
    parsed: list[tuple[int, str, Any]] = [(i, *_proof_type(raw)) for i, raw in enumerate(review.proofs)]
    evaluations: dict[int, ProofEvaluation] = {}
    verified_offers: list[tuple[SignedArtifact, str]] = []

    # Offers first (they can authorize a receipt signer through payTo), then receipts, then anything else.
    order = sorted(parsed, key=lambda t: {"x402-offer": 0, "x402-receipt": 1}.get(t[1], 2))
    for position, proof_type, obj in order:
        expected = REVIEW_PROOF_TYPES.get(proof_type)
        if expected is None:
            reason = Reason.MALFORMED_JSON if obj is None else Reason.UNSUPPORTED_PROOF_TYPE
            status = ProofStatus.INVALID if obj is None else ProofStatus.UNSUPPORTED
            outcome = ProofOutcome(
                status=status, reason=reason, kind=None, format=None, signature_valid=False, signer=None,
                tier=None, replay_key=None, checked_at=now, detail=f"proofType {proof_type!r}" if obj else "",
            )  # fmt: skip
            evaluations[position] = ProofEvaluation(position, proof_type, outcome, None, None, False, None)
            continue
        checked = check_artifact(
            data=obj,
            resolver=resolver,
            controllers=controllers,
            now=now,
            offers=tuple(verified_offers),
            expect=expected,
        )
        outcome, artifact = checked.outcome, checked.artifact
        if artifact is None:
            evaluations[position] = ProofEvaluation(position, proof_type, outcome, None, None, False, None)
            continue
        issued_at: int | None = None
        bound = False
        binding_reason: Reason | None = None
        if artifact.kind is ArtifactKind.OFFER:
            if outcome.status is ProofStatus.VERIFIED and outcome.signer and outcome.tier in OFFER_TRUST_TIERS:
                verified_offers.append((artifact, outcome.signer))
        elif outcome.signature_valid:
            receipt = artifact.payload
            issued_at = receipt.issued_at  # type: ignore[union-attr]
            try:
                check_binding(
                    receipt=receipt,  # type: ignore[arg-type]
                    subject=review.subject,
                    attester=attester,
                    review_time=review_time,
                    max_age=policy.receipt_max_age,
                    skew=policy.clock_skew,
                )
                bound = True
            except CheckFailed as exc:
                binding_reason = exc.reason
                outcome = replace(outcome, detail=exc.detail or outcome.detail)
        evaluations[position] = ProofEvaluation(
            position, proof_type, outcome, artifact, issued_at, bound, binding_reason
        )

    proofs = tuple(evaluations[i] for i in sorted(evaluations))
    return ReviewVerdict(proofs=proofs, verified_purchase=is_verified_purchase(proofs), evidence=evidence_class(proofs))


def is_verified_purchase(proofs: Sequence[ProofEvaluation]) -> bool:
    return any(
        p.outcome.kind is ArtifactKind.RECEIPT and p.outcome.status is ProofStatus.VERIFIED and p.bound for p in proofs
    )


def evidence_class(proofs: Sequence[ProofEvaluation]) -> str:
    if is_verified_purchase(proofs):
        return "verified"
    if any(p.outcome.kind is ArtifactKind.RECEIPT and p.outcome.signature_valid and p.bound for p in proofs):
        return "unauthorized"
    if any(p.outcome.kind is ArtifactKind.OFFER and p.outcome.status is ProofStatus.VERIFIED for p in proofs):
        return "offer-only"
    return "none"


def raise_for_problem(verdict: ReviewVerdict) -> None:
    """Turn the first unacceptable proof of a submission into its typed error.

    Raises:
        CheckFailed / CouldNotCheck subclass carrying the proof's reason (invalid → 422, indeterminate → 503,
        binding → 422).
    """
    problem = verdict.first_problem()
    if problem is None:
        return
    detail = f"proofs[{problem.position}]: {problem.outcome.detail}".rstrip(": ")
    if problem.binding_reason is not None and problem.outcome.status not in (
        ProofStatus.INVALID,
        ProofStatus.INDETERMINATE,
    ):
        raise BindingFailed(problem.binding_reason, detail)
    reason = problem.outcome.reason or Reason.INVALID_REVIEW
    if problem.outcome.status is ProofStatus.INDETERMINATE:
        raise CouldNotCheck(reason, detail)
    raise CheckFailed(reason, detail)


def is_self_review(*, attester: str, verdict: ReviewVerdict) -> bool:
    """True when ``attester`` signed one of the review's proofs (valid signature) or is the ``payTo`` of its offer:
    a service reviewing itself. ``submit`` refuses such reviews; sync and reverify unbind their receipts."""
    attester = attester.lower()
    for p in verdict.proofs:
        if p.outcome.signature_valid and (p.outcome.signer or "").lower() == attester:
            return True
        if p.artifact is not None and p.artifact.kind is ArtifactKind.OFFER:
            offer = p.artifact.payload
            if isinstance(offer, OfferPayload) and offer.pay_to.lower() == attester:
                return True
    return False
