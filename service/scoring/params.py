"""The one frozen, versioned parameter set of the trust score, and the evidence classes it weights.

Every number that shapes a score lives in :class:`ScoringParams`. A score always reports the ``version`` it was
computed with; change any value → change ``version``. Why each default is what it is: docs/scoring.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

SECONDS_PER_DAY = 86_400
# 2020-01-01T00:00:00Z. Stored decay sums are 2^((t - epoch)/H): a fixed epoch keeps the exponent small
# (about +2 per year with H = 180 days) so float64 holds it for centuries. See docs/scoring.md, "Numerics".
DECAY_EPOCH = 1_577_836_800
# |(t - epoch)/H| must stay below this: 2^±1000 is well inside float64 (max ≈ 2^1024) and still leaves
# room for sums of many terms. With H = 180 days that is ±493 years around 2020.
MAX_DECAY_EXPONENT = 1000.0


class Evidence(StrEnum):
    """How strongly a review is backed by proof of a purchase (decided by the workflows, not here).

    - ``verified``: a receipt verified, authorized AND bound to the review (subject, payer == attester, fresh, not
      replayed) — a verified purchase.
    - ``unauthorized``: a receipt/offer whose signature is valid but whose signer is not authorized for the service.
    - ``offer_only``: a verified, authorized offer of the service but no verified receipt.
    - ``none``: no usable proof (none attached, invalid, unsupported, or not checkable yet).
    """

    VERIFIED = "verified"
    UNAUTHORIZED = "unauthorized"
    OFFER_ONLY = "offer-only"
    NONE = "none"
    # Added with params v2 (payment-backed reviews):
    PAYMENT_BACKED = "payment-backed"  # a verified purchase whose payment was seen settled on its network
    TX_INTERACTION = "tx-interaction"  # a successful transaction from the reviewer to an address of the subject
    # Added in v2 without changing any score (its weight equals ``none``, the class such reviews had before):
    EVIDENCE_POINTER = "evidence-pointer"  # the subject's own host names the reviewer as a controller (weak)


# Fixed order of the aggregate's buckets. Never reorder: stored aggregates are positional. New classes are
# APPENDED, so a stored aggregate of an older layout is this layout's prefix with the new buckets empty
# (``aggregate.widen_layout``) — exact, with no rebuild.
EVIDENCE_ORDER: tuple[Evidence, ...] = (
    Evidence.VERIFIED,
    Evidence.UNAUTHORIZED,
    Evidence.OFFER_ONLY,
    Evidence.NONE,
    Evidence.PAYMENT_BACKED,
    Evidence.TX_INTERACTION,
    Evidence.EVIDENCE_POINTER,
)
# Verified purchases: never capped, and the only evidence the global prior mean is taken from.
PURCHASE_EVIDENCE: frozenset[Evidence] = frozenset({Evidence.PAYMENT_BACKED, Evidence.VERIFIED})
RATINGS: tuple[int, ...] = (1, 2, 3, 4, 5)
# Published parameter versions whose scores ignore ERC-8004 feedback (``erc8004_weight`` = 0).
UNSCORED_ERC8004_VERSIONS: frozenset[str] = frozenset({"v1", "v2"})


def rating_to_unit(rating: int) -> float:
    """1★ → 0.0, 2★ → 0.25, …, 5★ → 1.0 (exact in binary floating point)."""
    return (rating - 1) / 4


@dataclass(frozen=True, slots=True)
class ScoringParams:
    """Every tunable of the score. Frozen; ``version`` names the whole set.

    Raises:
        ValueError: on construction, when a value is outside the range where the score's guarantees hold
            (e.g. ``lower90 <= score`` needs ``prior_strength * prior_mean_min >= 0.05``).
    """

    version: str = "v2"
    # λ per evidence class: the weight of a fresh review of that class, in "verified purchases".
    # Ladder (v2): payment-backed > verified > tx-interaction > offer-only > unauthorized = evidence-pointer = none.
    weight_payment_backed: float = 1.5
    weight_verified: float = 1.0
    weight_tx_interaction: float = 0.75
    weight_unauthorized: float = 0.25
    weight_offer_only: float = 0.5
    weight_none: float = 0.25
    # = weight_none: an evidence-pointer review weighed as ``none`` before the class existed, so no score changes.
    weight_evidence_pointer: float = 0.25
    # H: a review's weight halves every H seconds.
    half_life_seconds: int = 180 * SECONDS_PER_DAY
    # m: the prior counts as m fresh verified reviews rating μ₀.
    prior_strength: float = 4.0
    # μ₀ when there is no verified evidence anywhere; a computed μ₀ is clamped into [min, max].
    prior_mean_fallback: float = 0.7
    prior_mean_min: float = 0.05
    prior_mean_max: float = 0.95
    # Unverified cap: unverified weight ≤ max(κ·verified weight, u_min × the average unverified review weight).
    unverified_cap_ratio: float = 0.25
    unverified_floor_reviews: float = 2.0
    # lower90 is this quantile of the Beta posterior.
    lower_quantile: float = 0.10
    # "one reviewer dominates": top reviewer share > dominance_share with at least dominance_min_reviewers.
    dominance_share: float = 0.5
    dominance_min_reviewers: int = 3
    # How many reviews a score lists as the ones that moved it most, and how many of the most recent live
    # reviews per (evidence, rating) bucket the aggregate path needs to find them exactly.
    max_movers: int = 5
    candidates_per_bucket: int = 5
    decay_epoch: int = DECAY_EPOCH
    # ERC-8004 on-chain feedback (docs/erc8004.md) is a separate evidence stream shown beside the score. Its weight
    # in the score: each payment-verified rating counts this much (in verified purchases). 0 = off, the default of
    # v1/v2; a parameter set that turns it on must name its own ``version`` (docs/scoring.md).
    erc8004_weight: float = 0.0

    def __post_init__(self) -> None:
        if not self.version:
            raise ValueError("version must be non-empty")
        if not (math.isfinite(self.weight_verified) and self.weight_verified > 0):
            raise ValueError("weight_verified must be > 0")
        if not (math.isfinite(self.weight_payment_backed) and self.weight_payment_backed >= self.weight_verified):
            raise ValueError("weight_payment_backed must be >= weight_verified")
        for name in ("weight_tx_interaction", "weight_unauthorized", "weight_offer_only", "weight_none",
                     "weight_evidence_pointer"):  # fmt: skip
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= self.weight_verified):
                raise ValueError(f"{name} must be in [0, weight_verified]")
        if self.half_life_seconds < SECONDS_PER_DAY:
            raise ValueError("half_life_seconds must be at least one day")
        if not (0.0 < self.prior_mean_min < self.prior_mean_max < 1.0):
            raise ValueError("need 0 < prior_mean_min < prior_mean_max < 1")
        if not (self.prior_mean_min <= self.prior_mean_fallback <= self.prior_mean_max):
            raise ValueError("prior_mean_fallback must be inside [prior_mean_min, prior_mean_max]")
        # Both Beta parameters are ≥ m·min(μ₀, 1-μ₀) ≥ 0.05; with the quantile ≤ 0.10 that keeps the
        # quantile at or below the mean (P(X ≤ mean) ≥ 0.117 for every Beta with both parameters ≥ 0.05).
        if not (math.isfinite(self.prior_strength) and self.prior_strength * self.prior_mean_min >= 0.05):
            raise ValueError("prior_strength * prior_mean_min must be >= 0.05")
        if self.prior_strength * (1 - self.prior_mean_max) < 0.05:
            raise ValueError("prior_strength * (1 - prior_mean_max) must be >= 0.05")
        if not (0.0 < self.lower_quantile <= 0.10):
            raise ValueError("lower_quantile must be in (0, 0.10]")
        if not (math.isfinite(self.unverified_cap_ratio) and self.unverified_cap_ratio >= 0):
            raise ValueError("unverified_cap_ratio must be >= 0")
        if not (math.isfinite(self.unverified_floor_reviews) and self.unverified_floor_reviews >= 0):
            raise ValueError("unverified_floor_reviews must be >= 0")
        if not (0.0 < self.dominance_share < 1.0) or self.dominance_min_reviewers < 1:
            raise ValueError("dominance_share must be in (0, 1) and dominance_min_reviewers >= 1")
        if not (math.isfinite(self.erc8004_weight) and 0.0 <= self.erc8004_weight <= self.weight_verified):
            raise ValueError("erc8004_weight must be in [0, weight_verified]")
        if self.erc8004_weight > 0 and self.version in UNSCORED_ERC8004_VERSIONS:
            raise ValueError(f"erc8004_weight > 0 changes scores: name a version other than {self.version!r}")
        if self.max_movers < 0 or self.candidates_per_bucket < self.max_movers:
            raise ValueError("need 0 <= max_movers <= candidates_per_bucket")

    def weight(self, evidence: Evidence) -> float:
        """λ for an evidence class."""
        match evidence:
            case Evidence.PAYMENT_BACKED:
                return self.weight_payment_backed
            case Evidence.VERIFIED:
                return self.weight_verified
            case Evidence.TX_INTERACTION:
                return self.weight_tx_interaction
            case Evidence.UNAUTHORIZED:
                return self.weight_unauthorized
            case Evidence.OFFER_ONLY:
                return self.weight_offer_only
            case Evidence.NONE:
                return self.weight_none
            case Evidence.EVIDENCE_POINTER:
                return self.weight_evidence_pointer

    def check_prior_mean(self, prior_mean: float) -> None:
        """Raises ValueError unless ``prior_mean`` is inside [prior_mean_min, prior_mean_max]."""
        if not (self.prior_mean_min <= prior_mean <= self.prior_mean_max):
            raise ValueError(
                f"prior_mean {prior_mean!r} outside [{self.prior_mean_min}, {self.prior_mean_max}]; "
                "use global_prior_mean(), which clamps"
            )


DEFAULT_PARAMS = ScoringParams()
# The first parameter set (before payment-backed and tx-interaction evidence existed). Scores of reviews without
# those classes are identical under v1 and v2; v1 gives the new classes the weights of their nearest v1 class.
V1_PARAMS = ScoringParams(version="v1", weight_payment_backed=1.0, weight_tx_interaction=0.5)
