"""What the store knows about a review that the proof evaluation does not: replayed receipts, self-reviews and
reviews stored with a problem. Shared by chain sync and batch re-verification, so both judge a review the same way.

* A receipt that already backs another live review is *replayed*: it stays in the review, its signature and
  authorization are still reported, but it is unbound (reason ``receipt-replayed``). Chain data cannot be refused,
  only judged.
* A review whose reviewer signed one of its proofs, or is the ``payTo`` of its offer, is a *self-review* (the rule
  of ``submit``): its receipts are unbound (reason ``self-review``).
* A review stored with a ``problem`` (e.g. its EAS recipient is not the DID Address of its subject) never counts as
  a verified purchase: its evidence class is ``none``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from service.domain import ArtifactKind, Reason
from service.workflows.evaluate import (
    ProofEvaluation,
    ReviewVerdict,
    evidence_class,
    is_self_review,
    is_verified_purchase,
)


def _unbind(p: ProofEvaluation, reason: Reason) -> ProofEvaluation:
    if p.outcome.kind is not ArtifactKind.RECEIPT or not p.outcome.signature_valid or not p.bound:
        return p
    return replace(p, bound=False, binding_reason=reason)


def with_store_facts(
    *,
    verdict: ReviewVerdict,
    attester: str,
    replayed_positions: Collection[int] = (),
    problem: str | None = None,
) -> ReviewVerdict:
    """The verdict with replayed receipts and self-reviews unbound and the review-level fields recomputed."""
    if not replayed_positions and problem is None and not is_self_review(attester=attester, verdict=verdict):
        return verdict  # nothing the store knows changes it (the common case)
    proofs = tuple(
        _unbind(p, Reason.RECEIPT_REPLAYED) if p.position in replayed_positions else p for p in verdict.proofs
    )
    if is_self_review(attester=attester, verdict=replace(verdict, proofs=proofs)):
        proofs = tuple(_unbind(p, Reason.SELF_REVIEW) for p in proofs)
    return summarize(proofs=proofs, problem=problem)


def summarize(*, proofs: tuple[ProofEvaluation, ...], problem: str | None = None) -> ReviewVerdict:
    """A verdict over final proof evaluations: verified purchase and evidence class as ``evaluate_review`` decides
    them, except that a review with a ``problem`` counts as ``none``."""
    if problem is not None:
        return ReviewVerdict(proofs=proofs, verified_purchase=False, evidence="none")
    return ReviewVerdict(proofs=proofs, verified_purchase=is_verified_purchase(proofs), evidence=evidence_class(proofs))
