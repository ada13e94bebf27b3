"""PURE trust-scoring core: reviews (or their O(1) aggregate) + parameters + ``now`` → :class:`TrustScore`.

No I/O. The model, parameters and worked examples: docs/scoring.md.
"""

from service.scoring.aggregate import (
    AggregateBucket,
    SubjectAggregate,
    aggregate_add,
    aggregate_merge,
    aggregate_remove,
    aggregate_reviews,
    aggregate_supersede,
    bucket_index,
    decay_term,
    empty_aggregate,
    widen_layout,
)
from service.scoring.beta import beta_quantile, regularized_incomplete_beta
from service.scoring.params import (
    DECAY_EPOCH,
    DEFAULT_PARAMS,
    PURCHASE_EVIDENCE,
    V1_PARAMS,
    Evidence,
    ScoringParams,
    rating_to_unit,
)
from service.scoring.result import Contribution, ReviewCounts, TrustScore
from service.scoring.review import ScoredReview
from service.scoring.score import explain, global_prior_mean, score_from_aggregate, score_reviews, select_candidates

__all__ = [
    "DECAY_EPOCH",
    "DEFAULT_PARAMS",
    "PURCHASE_EVIDENCE",
    "V1_PARAMS",
    "AggregateBucket",
    "Contribution",
    "Evidence",
    "ReviewCounts",
    "ScoredReview",
    "ScoringParams",
    "SubjectAggregate",
    "TrustScore",
    "aggregate_add",
    "aggregate_merge",
    "aggregate_remove",
    "aggregate_reviews",
    "aggregate_supersede",
    "beta_quantile",
    "bucket_index",
    "decay_term",
    "empty_aggregate",
    "explain",
    "global_prior_mean",
    "rating_to_unit",
    "regularized_incomplete_beta",
    "score_from_aggregate",
    "score_reviews",
    "select_candidates",
    "widen_layout",
]
