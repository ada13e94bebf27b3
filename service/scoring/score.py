"""The trust score: from an O(1) aggregate, or by an exact recompute over the full review list.

Both paths produce per-class weight totals at the same reference time and hand them to one read-time function
(:func:`_posterior`: unverified cap, then the Beta posterior); they differ only in how the totals are summed.
The model and every choice are explained in docs/scoring.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from service.domain import Reason
from service.errors import MalformedInput
from service.scoring.aggregate import SubjectAggregate, bucket_index, check_units
from service.scoring.beta import beta_quantile
from service.scoring.params import (
    EVIDENCE_ORDER,
    MAX_DECAY_EXPONENT,
    PURCHASE_EVIDENCE,
    RATINGS,
    Evidence,
    ScoringParams,
    rating_to_unit,
)
from service.scoring.result import Contribution, ReviewCounts, TrustScore
from service.scoring.review import ScoredReview


@dataclass(frozen=True, slots=True)
class _Totals:
    """Weights at ``as_of`` with λ and decay applied, before the cap. pos = Σ w·r, neg = Σ w·(1 - r)."""

    verified: float
    verified_pos: float
    verified_neg: float
    unverified: float
    unverified_pos: float
    unverified_neg: float
    unverified_count: int


@dataclass(frozen=True, slots=True)
class _Posterior:
    cap_scale: float
    verified_weight: float
    unverified_weight: float
    alpha: float
    beta: float
    erc8004_weight: float = 0.0  # the ERC-8004 stream (``params.erc8004_weight`` × its feedback count)

    @property
    def n(self) -> float:
        return self.verified_weight + self.unverified_weight + self.erc8004_weight


def _erc8004_sums(*, units: Sequence[float], params: ScoringParams) -> tuple[float, float, float]:
    """(weight, Σ w·r, Σ w·(1 - r)) of the ERC-8004 stream: each payment-verified rating (a unit in [0, 1]) weighs
    ``params.erc8004_weight``, undecayed and uncapped; nothing at all while the weight is 0 (off)."""
    w = params.erc8004_weight
    if w == 0.0 or not units:
        return 0.0, 0.0, 0.0
    if not all(0.0 <= u <= 1.0 for u in units):
        raise ValueError("ERC-8004 rating units must be in [0, 1]")
    return w * len(units), w * math.fsum(units), w * math.fsum(1.0 - u for u in units)


def _posterior(
    *, totals: _Totals, params: ScoringParams, prior_mean: float, erc8004: Sequence[float] = ()
) -> _Posterior:
    """Apply the unverified cap, then form Beta(α, β) with the prior worth m reviews rating μ₀."""
    # Cap: unverified weight ≤ max(κ·V, u_min × the mean unverified review weight). The floor is a multiple of
    # the unverified weights themselves, so the cap scales with decay like every weight does (decay then only
    # pulls a score toward μ₀). κ is kept ≤ (1-μ₀)/μ₀ so that the unverified weight a new verified 5★ unlocks
    # can never pull the score down (a verified 5★ never lowers the score) — docs/scoring.md, "The cap".
    kappa = min(params.unverified_cap_ratio, (1.0 - prior_mean) / prior_mean)
    floor = (
        params.unverified_floor_reviews * totals.unverified / totals.unverified_count
        if totals.unverified_count
        else 0.0
    )
    cap = max(kappa * totals.verified, floor)
    scale = 1.0 if totals.unverified <= cap else cap / totals.unverified
    m = params.prior_strength
    # The ERC-8004 stream (docs/scoring.md) is added after the cap: it neither unlocks nor is held by it.
    ext, ext_pos, ext_neg = _erc8004_sums(units=erc8004, params=params)
    return _Posterior(
        cap_scale=scale,
        verified_weight=totals.verified,
        unverified_weight=scale * totals.unverified,
        alpha=m * prior_mean + totals.verified_pos + scale * totals.unverified_pos + ext_pos,
        beta=m * (1.0 - prior_mean) + totals.verified_neg + scale * totals.unverified_neg + ext_neg,
        erc8004_weight=ext,
    )


def _check_time(*, time: int, params: ScoringParams, what: str) -> None:
    if abs(time - params.decay_epoch) / params.half_life_seconds > MAX_DECAY_EXPONENT:
        raise ValueError(f"{what} {time} is too far from the decay epoch")


def _decay(*, time: int, as_of: int, params: ScoringParams) -> float:
    return math.pow(2.0, -(as_of - time) / params.half_life_seconds)


def _contribution(
    *, review: ScoredReview, params: ScoringParams, prior_mean: float, as_of: int, post: _Posterior
) -> Contribution:
    evidence_weight = params.weight(review.evidence)
    decay = _decay(time=review.time, as_of=as_of, params=params)
    scale = 1.0 if review.evidence in PURCHASE_EVIDENCE else post.cap_scale
    weight = 0.0 if review.superseded else evidence_weight * decay * scale
    return Contribution(
        review_id=review.review_id,
        reviewer=review.reviewer,
        rating=review.rating,
        evidence=review.evidence,
        time=review.time,
        superseded=review.superseded,
        attestation_uid=review.attestation_uid,
        evidence_weight=evidence_weight,
        decay=decay,
        cap_scale=scale,
        weight=weight,
        contribution=100.0 * weight * (rating_to_unit(review.rating) - prior_mean) / (post.alpha + post.beta),
    )


def _mover_key(c: Contribution) -> tuple[float, int, str]:
    # Within one (evidence, rating) bucket |contribution| grows with time, so "most recent first, then id" is the
    # same order the candidate query uses: the aggregate path finds exactly the same movers.
    return (-abs(c.contribution), -c.time, c.review_id)


def _result(
    *,
    params: ScoringParams,
    prior_mean: float,
    as_of: int,
    post: _Posterior,
    counts: ReviewCounts,
    histogram_verified: tuple[int, ...],
    histogram_unverified: tuple[int, ...],
    last_review_at: int | None,
    live_contributions: Sequence[Contribution] | None,
    payment_backed_weight: float,
) -> TrustScore:
    n = post.n
    total = post.alpha + post.beta
    top_share: float | None = None
    top_payer: float | None = None
    movers: tuple[Contribution, ...] = ()
    if live_contributions is not None:
        if n > 0 and live_contributions:
            top_share = max(c.weight for c in live_contributions) / n
        # payer == attester for every payment-backed review (receipt binding), and one live review per attester.
        paid = [c.weight for c in live_contributions if c.evidence is Evidence.PAYMENT_BACKED]
        if payment_backed_weight > 0 and paid:
            top_payer = max(paid) / payment_backed_weight
        movers = tuple(sorted((c for c in live_contributions if c.contribution != 0.0), key=_mover_key))
        movers = movers[: params.max_movers]
    return TrustScore(
        params_version=params.version,
        as_of=as_of,
        prior_mean=prior_mean,
        score=100.0 * post.alpha / total,
        lower90=100.0 * beta_quantile(a=post.alpha, b=post.beta, p=params.lower_quantile),
        confidence=n / (params.prior_strength + n),
        effective_evidence=n,
        verified_weight=post.verified_weight,
        unverified_weight=post.unverified_weight,
        unverified_cap_scale=post.cap_scale,
        verified_share=post.verified_weight / n if n > 0 else None,
        counts=counts,
        histogram_verified=histogram_verified,
        histogram_unverified=histogram_unverified,
        last_review_at=last_review_at,
        top_reviewer_share=top_share,
        reviewer_dominates=(
            top_share is not None
            and top_share > params.dominance_share
            and counts.live >= params.dominance_min_reviewers
        ),
        top_movers=movers,
        payment_backed_weight=payment_backed_weight,
        top_payer_share=top_payer,
        erc8004_weight=post.erc8004_weight,
    )


# -- full recompute ---------------------------------------------------------------------------------------------


def _check_reviews(reviews: Sequence[ScoredReview], params: ScoringParams) -> None:
    ids: set[str] = set()
    live_reviewers: set[str] = set()
    for review in reviews:
        if review.review_id in ids:
            raise MalformedInput(Reason.INVALID_REVIEW, f"review {review.review_id!r} given twice")
        ids.add(review.review_id)
        if not review.superseded:
            if review.reviewer in live_reviewers:
                raise MalformedInput(
                    Reason.INVALID_REVIEW,
                    f"two live reviews by {review.reviewer!r}: mark all but the latest superseded",
                )
            live_reviewers.add(review.reviewer)
        _check_time(time=review.time, params=params, what="review time")


def _full(
    *, reviews: Sequence[ScoredReview], params: ScoringParams, now: int, prior_mean: float, erc8004: Sequence[float]
) -> tuple[int, _Posterior, list[Contribution], list[Contribution], TrustScore]:
    params.check_prior_mean(prior_mean)
    _check_reviews(reviews, params)
    _check_time(time=now, params=params, what="now")
    # A review stamped slightly after `now` (clock skew) would weigh more than λ: score as of the latest review.
    last = max((r.time for r in reviews), default=None)
    as_of = now if last is None else max(now, last)
    live = [r for r in reviews if not r.superseded]
    parts: dict[bool, tuple[list[float], list[float], list[float]]] = {True: ([], [], []), False: ([], [], [])}
    paid: list[float] = []
    for r in live:
        w = params.weight(r.evidence) * _decay(time=r.time, as_of=as_of, params=params)
        if r.evidence is Evidence.PAYMENT_BACKED:
            paid.append(w)
        unit = rating_to_unit(r.rating)
        weights, pos, neg = parts[r.evidence in PURCHASE_EVIDENCE]
        weights.append(w)
        pos.append(w * unit)
        neg.append(w * (1.0 - unit))
    n_verified = sum(1 for r in live if r.evidence in PURCHASE_EVIDENCE)
    totals = _Totals(
        verified=math.fsum(parts[True][0]),
        verified_pos=math.fsum(parts[True][1]),
        verified_neg=math.fsum(parts[True][2]),
        unverified=math.fsum(parts[False][0]),
        unverified_pos=math.fsum(parts[False][1]),
        unverified_neg=math.fsum(parts[False][2]),
        unverified_count=len(live) - n_verified,
    )
    post = _posterior(totals=totals, params=params, prior_mean=prior_mean, erc8004=erc8004)
    contributions = [
        _contribution(review=r, params=params, prior_mean=prior_mean, as_of=as_of, post=post) for r in reviews
    ]
    live_c = [c for c in contributions if not c.superseded]
    dead_c = [c for c in contributions if c.superseded]
    hist_v = [0] * 5
    hist_u = [0] * 5
    for r in live:
        (hist_v if r.evidence in PURCHASE_EVIDENCE else hist_u)[r.rating - 1] += 1
    counts = ReviewCounts(
        total=len(reviews),
        live=len(live),
        verified=n_verified,
        unverified=len(live) - n_verified,
        superseded=len(reviews) - len(live),
    )
    result = _result(
        params=params,
        prior_mean=prior_mean,
        as_of=as_of,
        post=post,
        counts=counts,
        histogram_verified=tuple(hist_v),
        histogram_unverified=tuple(hist_u),
        last_review_at=last,
        live_contributions=live_c,
        payment_backed_weight=math.fsum(paid),
    )
    return as_of, post, live_c, dead_c, result


def score_reviews(
    *,
    reviews: Iterable[ScoredReview],
    params: ScoringParams,
    now: int,
    prior_mean: float,
    erc8004: Sequence[float] = (),
) -> TrustScore:
    """Exact score of one subject from its full review list (live and superseded), as of ``now``. ``erc8004``: the
    subject's payment-verified ERC-8004 ratings as units in [0, 1] (``service.verdicts.erc8004.score_units``),
    counted only when ``params.erc8004_weight`` > 0.

    Raises:
        MalformedInput: INVALID_REVIEW when a review id repeats or a reviewer has two live reviews.
        ValueError: ``prior_mean`` outside the params' bounds, a time centuries away from the decay epoch, or an
            ERC-8004 unit outside [0, 1].
    """
    return _full(reviews=tuple(reviews), params=params, now=now, prior_mean=prior_mean, erc8004=erc8004)[4]


def explain(
    *,
    reviews: Iterable[ScoredReview],
    params: ScoringParams,
    now: int,
    prior_mean: float,
    erc8004: Sequence[float] = (),
) -> tuple[Contribution, ...]:
    """Every review's part in the score (for ``?explain=true``): live reviews by |contribution| (largest first),
    then superseded ones (weight 0) newest first. Live contributions sum to ``score - 100·prior_mean``.

    Raises:
        The same as :func:`score_reviews`.
    """
    _, _, live_c, dead_c, _ = _full(
        reviews=tuple(reviews), params=params, now=now, prior_mean=prior_mean, erc8004=erc8004
    )
    return tuple(sorted(live_c, key=_mover_key)) + tuple(sorted(dead_c, key=lambda c: (-c.time, c.review_id)))


# -- aggregate path ---------------------------------------------------------------------------------------------


def select_candidates(*, reviews: Iterable[ScoredReview], params: ScoringParams) -> tuple[ScoredReview, ...]:
    """The reviews :func:`score_from_aggregate` needs for top movers and the top reviewer share: for each
    (evidence, rating) bucket, its ``params.candidates_per_bucket`` most recent LIVE reviews, ordered by
    time descending then review_id ascending. This is the reference for the store's query, e.g.
    ``ROW_NUMBER() OVER (PARTITION BY evidence, rating ORDER BY time DESC, review_id ASC) <= 5``.
    """
    by_bucket: dict[int, list[ScoredReview]] = {}
    for review in reviews:
        if not review.superseded:
            by_bucket.setdefault(bucket_index(review.evidence, review.rating), []).append(review)
    chosen: list[ScoredReview] = []
    for i in sorted(by_bucket):
        ordered = sorted(by_bucket[i], key=lambda r: (-r.time, r.review_id))
        chosen.extend(ordered[: params.candidates_per_bucket])
    return tuple(chosen)


def _check_candidates(
    *, candidates: Sequence[ScoredReview], agg: SubjectAggregate, params: ScoringParams
) -> None:
    per_bucket = [0] * len(agg.counts)
    for c in candidates:
        if c.superseded:
            raise ValueError(f"candidate {c.review_id!r} is superseded; candidates are live reviews")
        per_bucket[bucket_index(c.evidence, c.rating)] += 1
    for i, (have, live) in enumerate(zip(per_bucket, agg.counts, strict=True)):
        if have != min(live, params.candidates_per_bucket):
            evidence, rating = EVIDENCE_ORDER[i // len(RATINGS)], RATINGS[i % len(RATINGS)]
            raise ValueError(
                f"bucket {evidence}/{rating}★ has {live} live reviews but {have} candidates "
                f"(expected {min(live, params.candidates_per_bucket)}): read aggregate and candidates together"
            )


def score_from_aggregate(
    *,
    agg: SubjectAggregate,
    params: ScoringParams,
    now: int,
    prior_mean: float,
    candidates: Sequence[ScoredReview] | None = None,
    erc8004: Sequence[float] = (),
) -> TrustScore:
    """The score from the O(1) aggregate; equals :func:`score_reviews` on the same reviews (to float rounding).

    ``candidates`` (see :func:`select_candidates`; ≤ 20 × candidates_per_bucket reviews) fill ``top_movers`` and
    ``top_reviewer_share``; without them those are empty / None. ``erc8004`` as for :func:`score_reviews`.

    Raises:
        ValueError: the aggregate's half-life/epoch differ from ``params``; ``prior_mean`` is out of bounds;
            ``now`` is centuries from the epoch; or the candidates do not match the aggregate's bucket counts.
    """
    check_units(agg=agg, params=params)
    params.check_prior_mean(prior_mean)
    _check_time(time=now, params=params, what="now")
    as_of = now if agg.last_review_at is None else max(now, agg.last_review_at)
    # Stored sums are Σ 2^((t - t0)/H); one factor 2^(-(as_of - t0)/H) turns them into weights at as_of.
    factor = math.pow(2.0, -(as_of - params.decay_epoch) / params.half_life_seconds)
    groups: dict[bool, tuple[list[float], list[float], list[float]]] = {True: ([], [], []), False: ([], [], [])}
    hist_v = [0] * 5
    hist_u = [0] * 5
    paid: list[float] = []
    for evidence in EVIDENCE_ORDER:
        scale = params.weight(evidence) * factor
        if evidence is Evidence.PAYMENT_BACKED:
            paid.extend(scale * agg.decay_sum(evidence, rating) for rating in RATINGS)
        verified = evidence in PURCHASE_EVIDENCE
        weights, pos, neg = groups[verified]
        for rating in RATINGS:
            w = scale * agg.decay_sum(evidence, rating)
            unit = rating_to_unit(rating)
            weights.append(w)
            pos.append(w * unit)
            neg.append(w * (1.0 - unit))
            (hist_v if verified else hist_u)[rating - 1] += agg.count(evidence, rating)
    n_verified = sum(hist_v)
    n_unverified = sum(hist_u)
    totals = _Totals(
        verified=math.fsum(groups[True][0]),
        verified_pos=math.fsum(groups[True][1]),
        verified_neg=math.fsum(groups[True][2]),
        unverified=math.fsum(groups[False][0]),
        unverified_pos=math.fsum(groups[False][1]),
        unverified_neg=math.fsum(groups[False][2]),
        unverified_count=n_unverified,
    )
    post = _posterior(totals=totals, params=params, prior_mean=prior_mean, erc8004=erc8004)
    live_c: list[Contribution] | None = None
    if candidates is not None:
        _check_candidates(candidates=candidates, agg=agg, params=params)
        live_c = [
            _contribution(review=r, params=params, prior_mean=prior_mean, as_of=as_of, post=post) for r in candidates
        ]
    counts = ReviewCounts(
        total=n_verified + n_unverified + agg.superseded,
        live=n_verified + n_unverified,
        verified=n_verified,
        unverified=n_unverified,
        superseded=agg.superseded,
    )
    return _result(
        params=params,
        prior_mean=prior_mean,
        as_of=as_of,
        post=post,
        counts=counts,
        histogram_verified=tuple(hist_v),
        histogram_unverified=tuple(hist_u),
        last_review_at=agg.last_review_at,
        live_contributions=live_c,
        payment_backed_weight=math.fsum(paid),
    )


def global_prior_mean(*, agg: SubjectAggregate, params: ScoringParams) -> float:
    """μ₀: the decay-weighted mean rating (in [0, 1]) of all verified reviews in ``agg`` (the merge of every
    subject's aggregate), clamped into [prior_mean_min, prior_mean_max]; ``prior_mean_fallback`` when there is no
    verified review. Decay scales every weight alike, so the mean does not depend on ``now``.

    Raises:
        ValueError: the aggregate's half-life/epoch differ from ``params``.
    """
    check_units(agg=agg, params=params)
    # λ-weighted: a payment-backed review counts for more than a verified one, as in the score itself (with only
    # verified reviews λ cancels out).
    sums = [math.fsum(params.weight(e) * agg.decay_sum(e, r) for e in sorted(PURCHASE_EVIDENCE)) for r in RATINGS]
    total = math.fsum(sums)
    if total <= 0.0:
        return params.prior_mean_fallback
    mean = math.fsum(s * rating_to_unit(r) for s, r in zip(sums, RATINGS, strict=True)) / total
    return min(params.prior_mean_max, max(params.prior_mean_min, mean))
