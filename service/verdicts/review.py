"""The review verdict: every proof of a review evaluated and tied to it, and what the review then proves.

* Proofs are evaluated in the registry's order (offers first, so a receipt signer can be authorized as the
  ``payTo`` of a signed offer in the same review). A proof type that is not registered is ``unsupported``; a proof
  that is not JSON is ``invalid``.
* Binding (registry ``bind``: for receipts subject, payer == attester, freshness) is checked for every proof
  whose signature is valid; replay (one receipt per live review) is a fact of the store, applied with
  :func:`with_store_facts`.
* A review is a verified purchase when a proof of a purchase type is verified and bound; its evidence class is the
  strongest one its proofs give (registry).
* Self-review: the reviewer signed one of its proofs (valid signature) or is the ``payTo`` of its offer.
  ``submit`` refuses such reviews; chain sync and re-verification unbind their receipts.
* A review stored with a ``problem`` (e.g. its EAS recipient is not the DID Address of its subject) never counts
  as a verified purchase: its evidence class is ``none``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from service.domain import (
    ArtifactKind,
    OfferPayload,
    ProofOutcome,
    ProofStatus,
    Reason,
    ReceiptPayload,
    Review,
    SignedArtifact,
)
from service.errors import BindingFailed, CheckFailed, CouldNotCheck
from service.verdicts.artifact import ArtifactData, check_in_order, proof_outcome
from service.verdicts.onchain import OnchainContext, OnchainVouch, payer_link
from service.verdicts.policy import ReviewPolicy
from service.verdicts.registry import (
    NONE,
    UNKNOWN_ORDER,
    ChainProofSpec,
    spec_for,
    spec_for_kind,
    stronger_evidence,
)
from service.verdicts.sources import ControllerSource, DocumentSource, KeySource


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
    evidence: str  # evidence class (registry.EVIDENCE_CLASSES)

    def backing_receipts(self) -> list[tuple[int, str]]:
        """(position, replay key) of the purchase proofs that back this review: signature valid and bound (payer ==
        attester, subject, fresh). Only those claim their receipt: one attached by someone who is not its payer
        must not be able to block the payer's own review by claiming it first."""
        return [
            (p.position, p.artifact.replay_key)
            for p in self.proofs
            if p.artifact is not None
            and p.bound
            and p.outcome.signature_valid
            and (spec := spec_for_kind(p.artifact.kind)) is not None
            and spec.purchase
        ]

    def receipt_keys(self) -> list[str]:
        """Replay keys of :meth:`backing_receipts`."""
        return [key for _, key in self.backing_receipts()]

    def first_problem(self) -> ProofEvaluation | None:
        """The first proof that makes a submission unacceptable (invalid, indeterminate or unbound), if any."""
        for p in self.proofs:
            if p.outcome.status in (ProofStatus.INVALID, ProofStatus.INDETERMINATE):
                return p
        for p in self.proofs:
            if p.binding_reason is not None:
                return p
        return None


def judge_review(
    *,
    review: Review,
    attester: str,
    review_time: int,
    now: int,
    documents: DocumentSource | None,
    controllers: ControllerSource | None,
    policy: ReviewPolicy,
    local_keys: KeySource | None = None,
    onchain: OnchainContext | None = None,
) -> ReviewVerdict:
    """Verify every proof of ``review`` and bind it to the review. Never raises for a bad proof: bad proofs get
    outcomes. ``onchain``: the OMATrust attestations (key-binding / controller-witness tiers, payer links).
    Raises only on programming errors."""
    evaluations: dict[int, ProofEvaluation] = {}
    wanted: list[tuple[int, str]] = []
    items: list[tuple[ArtifactData, ArtifactKind | None]] = []
    for position, raw in enumerate(review.proofs):
        proof_type, obj = _proof_type(raw)
        spec = spec_for(proof_type)
        if spec is None:
            outcome = _unchecked(proof_type, obj, now)
            evaluations[position] = ProofEvaluation(position, proof_type, outcome, None, None, False, None)
        else:
            wanted.append((position, proof_type))
            items.append((obj, spec.kind))
    checked = check_in_order(items=items, documents=documents, controllers=controllers, now=now, local_keys=local_keys,
                             onchain=onchain)  # fmt: skip
    for (position, proof_type), result in zip(wanted, checked, strict=True):
        evaluations[position] = bind_evaluation(
            ProofEvaluation(position, proof_type, result.outcome, result.artifact, None, False, None),
            subject=review.subject,
            attester=attester,
            review_time=review_time,
            policy=policy,
            onchain=onchain,
        )
    return summarize(proofs=tuple(evaluations[i] for i in sorted(evaluations)))


def bind_evaluation(
    p: ProofEvaluation,
    *,
    subject: str,
    attester: str,
    review_time: int,
    policy: ReviewPolicy,
    onchain: OnchainContext | None = None,
) -> ProofEvaluation:
    """``p`` tied to its review by its proof type's binding rule (only when its signature is valid). A receipt
    paid by another wallet than the attester's still binds when the payer linked the attester on chain
    (``service.verdicts.onchain.payer_link``, judged at the review's time); its detail names the link."""
    artifact = p.artifact
    spec = spec_for_kind(artifact.kind) if artifact is not None else None
    if artifact is None or spec is None or spec.bind is None or not p.outcome.signature_valid:
        return p
    payload = artifact.payload
    issued_at = payload.issued_at if isinstance(payload, ReceiptPayload) else None
    try:
        try:
            spec.bind(artifact=artifact, subject=subject, attester=attester, review_time=review_time, policy=policy)
        except CheckFailed as exc:
            link = _payer_link(exc, payload, attester=attester, at=review_time, onchain=onchain)
            if link is None or not isinstance(payload, ReceiptPayload):
                raise
            # the payer lent its receipt to the attester: the other binding rules still apply, with the payer
            spec.bind(artifact=artifact, subject=subject, attester=payload.payer, review_time=review_time,
                      policy=policy)  # fmt: skip
            detail = f"payer {payload.payer} linked to attester {attester} by {link.tier.value} {link.uid}"
            return replace(p, outcome=replace(p.outcome, detail=detail), issued_at=issued_at, bound=True,
                           binding_reason=None)  # fmt: skip
    except CheckFailed as exc:
        outcome = replace(p.outcome, detail=exc.detail or p.outcome.detail)
        return replace(p, outcome=outcome, issued_at=issued_at, bound=False, binding_reason=exc.reason)
    return replace(p, issued_at=issued_at, bound=True, binding_reason=None)


def _payer_link(
    exc: CheckFailed, payload: object, *, attester: str, at: int, onchain: OnchainContext | None
) -> OnchainVouch | None:
    if exc.reason is not Reason.PAYER_MISMATCH or onchain is None or not isinstance(payload, ReceiptPayload):
        return None
    found = payer_link(payer=payload.payer, attester=attester, at=at, lookup=onchain.lookup)
    return found if isinstance(found, OnchainVouch) else None


def evaluation_order(p: ProofEvaluation) -> int:
    """Where ``p`` comes in the registry's evaluation order (offers first)."""
    spec = spec_for_kind(p.outcome.kind)
    return spec.order if spec is not None else UNKNOWN_ORDER


def is_verified_purchase(proofs: Sequence[ProofEvaluation]) -> bool:
    for p in proofs:
        spec = spec_for_kind(p.outcome.kind)
        if spec is not None and spec.purchase and p.outcome.status is ProofStatus.VERIFIED and p.bound:
            return True
    return False


def evidence_class(proofs: Sequence[ProofEvaluation]) -> str:
    """The strongest evidence class the proofs give (registry ``verified_evidence`` / ``signed_evidence``)."""
    best = NONE
    for p in proofs:
        spec = spec_for_kind(p.outcome.kind)
        if spec is None or (spec.bind is not None and not p.bound):
            continue
        if p.outcome.status is ProofStatus.VERIFIED:
            best = stronger_evidence(best, spec.verified_evidence)
        elif p.outcome.signature_valid and spec.signed_evidence is not None:
            best = stronger_evidence(best, spec.signed_evidence)
    return best


def summarize(*, proofs: tuple[ProofEvaluation, ...], problem: str | None = None) -> ReviewVerdict:
    """A verdict over final proof evaluations; a review with a ``problem`` counts as ``none``."""
    if problem is not None:
        return ReviewVerdict(proofs=proofs, verified_purchase=False, evidence=NONE)
    return ReviewVerdict(proofs=proofs, verified_purchase=is_verified_purchase(proofs), evidence=evidence_class(proofs))


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
    a service reviewing itself."""
    attester = attester.lower()
    for p in verdict.proofs:
        if p.outcome.signature_valid and (p.outcome.signer or "").lower() == attester:
            return True
        payload = p.artifact.payload if p.artifact is not None else None
        if isinstance(payload, OfferPayload) and payload.pay_to.lower() == attester:
            return True
    return False


def with_store_facts(
    *,
    verdict: ReviewVerdict,
    attester: str,
    replayed_positions: Collection[int] = (),
    problem: str | None = None,
) -> ReviewVerdict:
    """The verdict with what the store knows applied: receipts that already back another live review unbound
    (``receipt-replayed``: chain data cannot be refused, only judged), a self-review's receipts unbound
    (``self-review``), and a review stored with a ``problem`` counted as ``none``."""
    if not replayed_positions and problem is None and not is_self_review(attester=attester, verdict=verdict):
        return verdict  # nothing the store knows changes it (the common case)
    proofs = tuple(
        _unbind(p, Reason.RECEIPT_REPLAYED) if p.position in replayed_positions else p for p in verdict.proofs
    )
    if is_self_review(attester=attester, verdict=replace(verdict, proofs=proofs)):
        proofs = tuple(_unbind(p, Reason.SELF_REVIEW) for p in proofs)
    return summarize(proofs=proofs, problem=problem)


def _unbind(p: ProofEvaluation, reason: Reason) -> ProofEvaluation:
    spec = spec_for_kind(p.outcome.kind)
    if spec is None or spec.bind is None or not p.outcome.signature_valid or not p.bound:
        return p
    return replace(p, bound=False, binding_reason=reason)


def _proof_type(raw: str) -> tuple[str, Any]:
    try:
        obj = json.loads(raw)
    except ValueError:
        return "", None
    if isinstance(obj, dict):
        return str(obj.get("proofType", "")), obj
    return "", obj


def _unchecked(proof_type: str, obj: Any, now: int) -> ProofOutcome:
    """The outcome of a proof that is not JSON (invalid) or of a type that is not registered (unsupported)."""
    if obj is None:
        return proof_outcome(status=ProofStatus.INVALID, reason=Reason.MALFORMED_JSON, now=now)
    detail = f"proofType {proof_type!r}" if obj else ""
    return proof_outcome(status=ProofStatus.UNSUPPORTED, reason=Reason.UNSUPPORTED_PROOF_TYPE, now=now, detail=detail)


ChainProofJudgement = tuple[ProofStatus, Reason | None, str]  # (status, reason, detail) of one chain-evidence proof


def with_chain_proofs(
    *,
    verdict: ReviewVerdict,
    review: Review,
    spec: ChainProofSpec,
    judge: Callable[[str], ChainProofJudgement],
    now: int,
    marks_signature: bool = False,
) -> ReviewVerdict:
    """The verdict with every proof of ``spec``'s type judged by ``judge`` (given the proof's raw wrapper) and the
    evidence class raised to ``spec.verified_evidence`` when one verified and nothing stronger backs the review.
    These proofs are judged outside the artifact pipeline (it left them ``unsupported``). ``marks_signature``: a
    verified proof also counts as a valid signature (a transaction the attester sent). Raises whatever ``judge``
    raises (the checks in workflows never raise)."""
    proofs = list(verdict.proofs)
    changed = False
    for i, p in enumerate(proofs):
        if p.proof_type != spec.proof_type or p.position >= len(review.proofs):
            continue
        status, reason, detail = judge(review.proofs[p.position])
        outcome = replace(p.outcome, status=status, reason=reason, detail=detail[:500], checked_at=now)
        if marks_signature:
            outcome = replace(outcome, signature_valid=status is ProofStatus.VERIFIED)
        proofs[i] = replace(p, outcome=outcome, bound=status is ProofStatus.VERIFIED)
        changed = True
    if not changed:
        return verdict
    evidence = verdict.evidence
    if any(p.proof_type == spec.proof_type and p.outcome.status is ProofStatus.VERIFIED for p in proofs):
        evidence = stronger_evidence(evidence, spec.verified_evidence)
    return replace(verdict, proofs=tuple(proofs), evidence=evidence)
