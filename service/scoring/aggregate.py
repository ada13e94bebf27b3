"""A per-subject aggregate of reviews that is updated in O(1) on every write and read in O(1) at any ``now``.

Decay is exponential, so every weight shrinks by the same factor as time passes. A review's weight at ``now`` is
``λ · 2^(-(now - t)/H) = λ · 2^((t - t0)/H) · 2^(-(now - t0)/H)``: the first power depends only on the review,
the second only on ``now``. So the aggregate stores, per (evidence class, rating) bucket, the live-review count
and ``decay_sum = Σ 2^((t - t0)/H)``; reading multiplies by λ and ``2^(-(now - t0)/H)``.

λ is NOT baked into the stored sums: evidence weights, prior and cap can change (a new params version) without
rebuilding the aggregate. Only H and t0 (``half_life_seconds``, ``decay_epoch``) define the stored units; the
aggregate records both and readers refuse an aggregate built with different ones.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from service.scoring.params import EVIDENCE_ORDER, MAX_DECAY_EXPONENT, RATINGS, Evidence, ScoringParams
from service.scoring.review import ScoredReview

N_BUCKETS = len(EVIDENCE_ORDER) * len(RATINGS)
T = TypeVar("T")


def bucket_index(evidence: Evidence, rating: int) -> int:
    """Position of the (evidence, rating) bucket in the aggregate's tuples."""
    return EVIDENCE_ORDER.index(evidence) * len(RATINGS) + (rating - 1)


def widen_layout(values: Sequence[T], *, fill: T) -> tuple[T, ...]:
    """Per-bucket values stored under an older bucket layout, in this one. Evidence classes are only ever appended
    to ``EVIDENCE_ORDER``, so an older layout is a prefix of this one and the new classes' buckets are empty: the
    migration is exact and needs no rebuild.

    Raises:
        ValueError: the values are not a whole number of evidence classes, or more than this layout holds.
    """
    if len(values) > N_BUCKETS or len(values) % len(RATINGS):
        raise ValueError(f"{len(values)} buckets do not fit the {N_BUCKETS}-bucket layout")
    return (*values, *([fill] * (N_BUCKETS - len(values))))


def decay_term(*, time: int, half_life_seconds: int, decay_epoch: int) -> float:
    """``2^((time - decay_epoch)/half_life_seconds)``: what one review adds to its bucket's ``decay_sum``.

    Exposed so a store can apply the same O(1) update atomically in SQL
    (``count = count + 1, decay_sum = decay_sum + :term``).

    Raises:
        ValueError: the exponent is beyond ±MAX_DECAY_EXPONENT (the time is centuries from the epoch).
    """
    exponent = (time - decay_epoch) / half_life_seconds
    if not -MAX_DECAY_EXPONENT <= exponent <= MAX_DECAY_EXPONENT:
        raise ValueError(f"time {time} is too far from the decay epoch for half-life {half_life_seconds}s")
    return math.pow(2.0, exponent)


@dataclass(frozen=True, slots=True)
class AggregateBucket:
    """One persisted row of an aggregate: live reviews of one subject with one evidence class and rating."""

    evidence: Evidence
    rating: int
    count: int
    decay_sum: float


@dataclass(frozen=True, slots=True)
class SubjectAggregate:
    """Everything a score needs about one subject's reviews (or, merged, about all subjects), in O(1) space.

    ``counts[i]`` / ``decay_sums[i]`` are the live reviews of bucket ``i = bucket_index(evidence, rating)``.
    ``superseded`` counts reviews replaced by a newer one of the same reviewer. ``last_review_at`` is the latest
    review time ever added (live or superseded); removals never lower it — reviews are non-revocable
    attestations, so a removal is always a supersession or a re-classification of a review that still exists.

    Raises:
        ValueError: on construction, for tuples of the wrong length, negative counts, or non-finite sums.
    """

    half_life_seconds: int
    decay_epoch: int
    counts: tuple[int, ...] = (0,) * N_BUCKETS
    decay_sums: tuple[float, ...] = (0.0,) * N_BUCKETS
    superseded: int = 0
    last_review_at: int | None = None

    def __post_init__(self) -> None:
        if len(self.counts) != N_BUCKETS or len(self.decay_sums) != N_BUCKETS:
            raise ValueError(f"an aggregate has exactly {N_BUCKETS} buckets")
        if any(c < 0 for c in self.counts) or self.superseded < 0:
            raise ValueError("aggregate counts must be >= 0")
        if not all(math.isfinite(s) for s in self.decay_sums):
            raise ValueError("aggregate decay sums must be finite")

    def count(self, evidence: Evidence, rating: int) -> int:
        return self.counts[bucket_index(evidence, rating)]

    def decay_sum(self, evidence: Evidence, rating: int) -> float:
        # Subtraction on removal can leave a rounding residue just below zero: never let it go negative.
        return max(0.0, self.decay_sums[bucket_index(evidence, rating)])

    def live_count(self) -> int:
        return sum(self.counts)

    def buckets(self) -> tuple[AggregateBucket, ...]:
        """All buckets as rows (for persistence), in EVIDENCE_ORDER × rating order."""
        return tuple(
            AggregateBucket(evidence=e, rating=r, count=self.count(e, r), decay_sum=self.decay_sums[bucket_index(e, r)])
            for e in EVIDENCE_ORDER
            for r in RATINGS
        )

    @classmethod
    def from_buckets(
        cls,
        *,
        buckets: Iterable[AggregateBucket],
        superseded: int,
        last_review_at: int | None,
        half_life_seconds: int,
        decay_epoch: int,
    ) -> SubjectAggregate:
        """Rebuild an aggregate from persisted rows; missing buckets are empty.

        Raises:
            ValueError: a bucket appears twice, or a value is invalid (see the class).
        """
        counts = [0] * N_BUCKETS
        sums = [0.0] * N_BUCKETS
        seen: set[int] = set()
        for bucket in buckets:
            i = bucket_index(Evidence(bucket.evidence), bucket.rating)
            if i in seen:
                raise ValueError(f"duplicate bucket {bucket.evidence}/{bucket.rating}")
            seen.add(i)
            counts[i] = bucket.count
            sums[i] = bucket.decay_sum
        return cls(
            half_life_seconds=half_life_seconds,
            decay_epoch=decay_epoch,
            counts=tuple(counts),
            decay_sums=tuple(sums),
            superseded=superseded,
            last_review_at=last_review_at,
        )


def empty_aggregate(*, params: ScoringParams) -> SubjectAggregate:
    """An aggregate with no reviews, in the stored units (H, t0) of ``params``."""
    return SubjectAggregate(half_life_seconds=params.half_life_seconds, decay_epoch=params.decay_epoch)


def _latest(a: int | None, b: int) -> int:
    return b if a is None else max(a, b)


def aggregate_add(*, agg: SubjectAggregate, review: ScoredReview) -> SubjectAggregate:
    """The aggregate with ``review`` added: a live review enters its bucket; a superseded one is only counted.

    Raises:
        ValueError: the review time is out of the representable range (see :func:`decay_term`).
    """
    term = decay_term(time=review.time, half_life_seconds=agg.half_life_seconds, decay_epoch=agg.decay_epoch)
    if review.superseded:
        return dataclasses.replace(
            agg, superseded=agg.superseded + 1, last_review_at=_latest(agg.last_review_at, review.time)
        )
    i = bucket_index(review.evidence, review.rating)
    counts = list(agg.counts)
    sums = list(agg.decay_sums)
    counts[i] += 1
    sums[i] += term
    return dataclasses.replace(
        agg, counts=tuple(counts), decay_sums=tuple(sums), last_review_at=_latest(agg.last_review_at, review.time)
    )


def aggregate_remove(*, agg: SubjectAggregate, review: ScoredReview) -> SubjectAggregate:
    """The aggregate with ``review`` (previously added with the same fields) taken out.

    ``last_review_at`` is kept (see :class:`SubjectAggregate`).

    Raises:
        ValueError: the review's bucket (or the superseded count) is already empty, or its time is out of range.
    """
    term = decay_term(time=review.time, half_life_seconds=agg.half_life_seconds, decay_epoch=agg.decay_epoch)
    if review.superseded:
        if agg.superseded == 0:
            raise ValueError("no superseded review to remove")
        return dataclasses.replace(agg, superseded=agg.superseded - 1)
    i = bucket_index(review.evidence, review.rating)
    if agg.counts[i] == 0:
        raise ValueError(f"no live {review.evidence}/{review.rating}★ review to remove")
    counts = list(agg.counts)
    sums = list(agg.decay_sums)
    counts[i] -= 1
    # An emptied bucket is reset to exactly 0 so rounding residue from add/remove cycles cannot accumulate.
    sums[i] = 0.0 if counts[i] == 0 else max(0.0, sums[i] - term)
    return dataclasses.replace(agg, counts=tuple(counts), decay_sums=tuple(sums))


def aggregate_supersede(*, agg: SubjectAggregate, old: ScoredReview, new: ScoredReview) -> SubjectAggregate:
    """The reviewer's live review ``old`` is replaced by ``new``: old leaves its bucket and is counted as
    superseded, new enters. Pass both as live (``superseded=False``) — as they were / will be added.

    Raises:
        ValueError: either review is marked superseded, their reviewers differ, or see :func:`aggregate_remove`.
    """
    if old.superseded or new.superseded:
        raise ValueError("pass old and new as live reviews")
    if old.reviewer != new.reviewer:
        raise ValueError("a review is only superseded by the same reviewer's newer review")
    agg = aggregate_remove(agg=agg, review=old)
    agg = aggregate_add(agg=agg, review=dataclasses.replace(old, superseded=True))
    return aggregate_add(agg=agg, review=new)


def aggregate_reviews(*, reviews: Iterable[ScoredReview], params: ScoringParams) -> SubjectAggregate:
    """Fold reviews into a fresh aggregate (a rebuild; the store normally updates incrementally).

    Raises:
        ValueError: see :func:`aggregate_add`.
    """
    agg = empty_aggregate(params=params)
    for review in reviews:
        agg = aggregate_add(agg=agg, review=review)
    return agg


def aggregate_merge(*, aggregates: Iterable[SubjectAggregate], params: ScoringParams) -> SubjectAggregate:
    """Bucket-wise sum of several aggregates (e.g. all subjects → the global aggregate for the prior mean).

    Raises:
        ValueError: an aggregate was built with a different half-life or epoch than ``params``.
    """
    counts = [0] * N_BUCKETS
    sums = [0.0] * N_BUCKETS
    superseded = 0
    last: int | None = None
    for agg in aggregates:
        check_units(agg=agg, params=params)
        for i in range(N_BUCKETS):
            counts[i] += agg.counts[i]
            sums[i] += agg.decay_sums[i]
        superseded += agg.superseded
        if agg.last_review_at is not None:
            last = _latest(last, agg.last_review_at)
    return SubjectAggregate(
        half_life_seconds=params.half_life_seconds,
        decay_epoch=params.decay_epoch,
        counts=tuple(counts),
        decay_sums=tuple(sums),
        superseded=superseded,
        last_review_at=last,
    )


def check_units(*, agg: SubjectAggregate, params: ScoringParams) -> None:
    """Raises ValueError when ``agg`` was built with a half-life or epoch other than ``params``'s."""
    if agg.half_life_seconds != params.half_life_seconds or agg.decay_epoch != params.decay_epoch:
        raise ValueError(
            f"aggregate built with H={agg.half_life_seconds}s, t0={agg.decay_epoch}; params use "
            f"H={params.half_life_seconds}s, t0={params.decay_epoch}: rebuild the aggregate"
        )
