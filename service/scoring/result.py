"""What a score says: the result object and the per-review contributions behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.scoring.params import Evidence


@dataclass(frozen=True, slots=True)
class ReviewCounts:
    """``total`` = ``live`` + ``superseded``; ``live`` = ``verified`` + ``unverified`` (every non-verified class)."""

    total: int
    live: int
    verified: int
    unverified: int
    superseded: int


@dataclass(frozen=True, slots=True)
class Contribution:
    """How one review enters the score at ``as_of``.

    ``weight = evidence_weight · decay · cap_scale`` (0 for a superseded review) and
    ``contribution = 100 · weight · (r - μ₀) / (m + n)`` in score points, with r the rating mapped to [0, 1] and
    n the effective evidence. The contributions of all live reviews add up exactly to ``score - 100·μ₀``.
    """

    review_id: str
    reviewer: str
    rating: int
    evidence: Evidence
    time: int
    superseded: bool
    attestation_uid: str | None
    evidence_weight: float  # λ of the evidence class
    decay: float  # 2^(-age/H)
    cap_scale: float  # share of unverified weight kept by the cap (1.0 for verified reviews)
    weight: float
    contribution: float

    def to_wire(self) -> dict[str, Any]:
        return {
            "reviewId": self.review_id,
            "reviewer": self.reviewer,
            "rating": self.rating,
            "evidence": self.evidence.value,
            "time": self.time,
            "superseded": self.superseded,
            "attestationUid": self.attestation_uid,
            "evidenceWeight": self.evidence_weight,
            "decay": self.decay,
            "capScale": self.cap_scale,
            "weight": self.weight,
            "contribution": self.contribution,
        }


@dataclass(frozen=True, slots=True)
class TrustScore:
    """A subject's trust score at ``as_of``.

    ``score`` is 100 × the Beta posterior mean; ``lower90`` is 100 × its ``lower_quantile`` (10th percentile; use
    it to rank); ``confidence`` = n/(m + n) with n = ``effective_evidence`` (weights after decay and cap).
    ``verified_share`` and ``top_reviewer_share`` are shares of n (None when n = 0, or — for the top reviewer share
    and ``top_movers`` — when an aggregate was scored without candidates). Histograms count live reviews,
    index 0 = 1★.
    """

    params_version: str
    as_of: int
    prior_mean: float
    score: float
    lower90: float
    confidence: float
    effective_evidence: float
    verified_weight: float
    unverified_weight: float  # after the cap
    unverified_cap_scale: float  # 1.0 = the cap did not bind
    verified_share: float | None
    counts: ReviewCounts
    histogram_verified: tuple[int, ...]
    histogram_unverified: tuple[int, ...]
    last_review_at: int | None
    top_reviewer_share: float | None
    reviewer_dominates: bool
    top_movers: tuple[Contribution, ...]
    # Weight of the payment-backed reviews (after decay), and the largest single payer's share of it: one payer
    # holding most of the payment-backed weight (e.g. a merchant paying itself from one wallet) shows here.
    # None as for ``top_reviewer_share`` (and when there is no payment-backed weight).
    payment_backed_weight: float = 0.0
    top_payer_share: float | None = None
    # Weight of the ERC-8004 stream in ``effective_evidence`` (0 unless ``ScoringParams.erc8004_weight`` > 0).
    erc8004_weight: float = 0.0

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready dict with camelCase keys (floats unrounded; presentation rounds)."""
        return {
            "paramsVersion": self.params_version,
            "asOf": self.as_of,
            "priorMean": self.prior_mean,
            "score": self.score,
            "lower90": self.lower90,
            "confidence": self.confidence,
            "effectiveEvidence": self.effective_evidence,
            "verifiedWeight": self.verified_weight,
            "unverifiedWeight": self.unverified_weight,
            "unverifiedCapScale": self.unverified_cap_scale,
            "verifiedShare": self.verified_share,
            "counts": {
                "total": self.counts.total,
                "live": self.counts.live,
                "verified": self.counts.verified,
                "unverified": self.counts.unverified,
                "superseded": self.counts.superseded,
            },
            "histogram": {"verified": list(self.histogram_verified), "unverified": list(self.histogram_unverified)},
            "lastReviewAt": self.last_review_at,
            "topReviewerShare": self.top_reviewer_share,
            "reviewerDominates": self.reviewer_dominates,
            "paymentBackedWeight": self.payment_backed_weight,
            "topPayerShare": self.top_payer_share,
            "topMovers": [m.to_wire() for m in self.top_movers],
        }
