"""Properties the score must have for every history (hypothesis), with bounds computed independently."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import MalformedInput
from service.scoring import (
    DEFAULT_PARAMS,
    PURCHASE_EVIDENCE,
    Evidence,
    ScoredReview,
    aggregate_reviews,
    explain,
    score_from_aggregate,
    score_reviews,
)
from tests.scoring.strategies import DAY, NOW, ages, evidences, histories, priors, ratings

P = DEFAULT_PARAMS
H = 180 * DAY
UNVERIFIED = [e for e in Evidence if e not in PURCHASE_EVIDENCE]


def score(reviews: list[ScoredReview], prior: float, now: int = NOW) -> float:
    return score_reviews(reviews=reviews, params=P, now=now, prior_mean=prior).score


@given(reviews=histories(), prior=priors)
def test_bounds(reviews: list[ScoredReview], prior: float) -> None:
    result = score_reviews(reviews=reviews, params=P, now=NOW, prior_mean=prior)
    assert 0.0 <= result.lower90 <= result.score <= 100.0
    assert 0.0 <= result.confidence < 1.0
    assert result.effective_evidence >= 0.0
    assert result.counts.total == len(reviews)
    assert sum(result.histogram_verified) + sum(result.histogram_unverified) == result.counts.live
    if result.top_reviewer_share is not None:
        assert 0.0 < result.top_reviewer_share <= 1.0 + 1e-12


@given(reviews=histories(), prior=priors, age=ages)
def test_a_verified_five_star_never_lowers_the_score(reviews: list[ScoredReview], prior: float, age: int) -> None:
    before = score(reviews, prior)
    for evidence in sorted(PURCHASE_EVIDENCE):  # verified and payment-backed alike
        extra = ScoredReview(review_id="new", reviewer="0xnew", rating=5, time=NOW - age, evidence=evidence)
        assert score([*reviews, extra], prior) >= before - 1e-9


def test_a_verified_five_star_never_lowers_the_score_at_a_high_prior() -> None:
    # The case κ_eff guards: many verified 5★, a capped 1★ crowd, μ₀ = 0.9 > 1/(1+κ).
    verified = [ScoredReview(review_id=f"v{i}", reviewer=f"v{i}", rating=5, time=NOW, evidence=Evidence.VERIFIED)
                for i in range(20)]
    crowd = [ScoredReview(review_id=f"u{i}", reviewer=f"u{i}", rating=1, time=NOW, evidence=Evidence.NONE)
             for i in range(400)]
    scores = [score(verified[:k] + crowd, 0.9) for k in range(21)]
    assert all(later >= earlier - 1e-9 for earlier, later in itertools.pairwise(scores))
    # With κ = ¼ unguarded, 20 verified 5★ would let in a crowd of 5 at 1★: (3.6 + 20)/(4 + 25) = 81.4 < 90.
    assert scores[-1] == pytest.approx(90.0)


@given(reviews=histories(), prior=priors, seed=st.integers(0, 2**32 - 1))
def test_order_independent(reviews: list[ScoredReview], prior: float, seed: int) -> None:
    shuffled = reviews[:]
    random.Random(seed).shuffle(shuffled)
    # The full path sums with math.fsum (exactly rounded), so it is exactly order-independent.
    a = score_reviews(reviews=reviews, params=P, now=NOW, prior_mean=prior)
    b = score_reviews(reviews=shuffled, params=P, now=NOW, prior_mean=prior)
    assert a == b
    # The aggregate path adds in a different order: equal to rounding.
    agg_a = score_from_aggregate(agg=aggregate_reviews(reviews=reviews, params=P), params=P, now=NOW, prior_mean=prior)
    agg_b = score_from_aggregate(agg=aggregate_reviews(reviews=shuffled, params=P), params=P, now=NOW, prior_mean=prior)
    assert agg_a.score == pytest.approx(agg_b.score, rel=1e-12)
    assert agg_a.effective_evidence == pytest.approx(agg_b.effective_evidence, rel=1e-12, abs=1e-15)


def _independent_bounds(verified: list[ScoredReview], prior: float) -> tuple[float, float]:
    """Score range that any unverified flood can produce on top of ``verified``, from the documented cap alone:
    the crowd weighs at most max(min(κ, (1-μ₀)/μ₀)·V, u_min · max λ_unverified) at ratings in [0, 1]."""
    m, kappa, u_min = 4.0, 0.25, 2.0
    max_lambda = max(P.weight(e) for e in UNVERIFIED)  # tx-interaction (0.75) under v2
    weights = [2.0 ** (-(NOW - r.time) / H) for r in verified]
    v = math.fsum(weights)
    vp = math.fsum(w * (r.rating - 1) / 4 for w, r in zip(weights, verified, strict=True))
    crowd = max(min(kappa, (1 - prior) / prior) * v, u_min * max_lambda)
    low = 100 * (m * prior + vp) / (m + v + crowd)  # the whole crowd at 1★
    high = 100 * (m * prior + vp + crowd) / (m + v + crowd)  # the whole crowd at 5★
    return low, high


@given(
    verified_specs=st.lists(st.tuples(ratings, ages), max_size=15),
    flood_size=st.integers(0, 1000),
    flood_rating=st.sampled_from([1, 5]),
    flood_evidence=st.sampled_from(UNVERIFIED),
    flood_age=ages,
    prior=priors,
)
@settings(max_examples=60)
def test_unverified_flood_is_bounded(
    verified_specs: list[tuple[int, int]],
    flood_size: int,
    flood_rating: int,
    flood_evidence: Evidence,
    flood_age: int,
    prior: float,
) -> None:
    verified = [
        ScoredReview(review_id=f"v{i}", reviewer=f"v{i}", rating=rating, time=NOW - age, evidence=Evidence.VERIFIED)
        for i, (rating, age) in enumerate(verified_specs)
    ]
    flood = [
        ScoredReview(review_id=f"u{i}", reviewer=f"u{i}", rating=flood_rating, time=NOW - flood_age,
                     evidence=flood_evidence)
        for i in range(flood_size)
    ]
    low, high = _independent_bounds(verified, prior)
    assert low - 1e-9 <= score(verified + flood, prior) <= high + 1e-9


def test_thousand_one_star_against_ten_verified_five_star() -> None:
    verified = [ScoredReview(review_id=f"v{i}", reviewer=f"v{i}", rating=5, time=NOW, evidence=Evidence.VERIFIED)
                for i in range(10)]
    flood = [ScoredReview(review_id=f"u{i}", reviewer=f"u{i}", rating=1, time=NOW, evidence=Evidence.NONE)
             for i in range(1000)]
    # By hand: V = 10; the crowd may weigh max(¼·10, 2·¼) = 2.5 at r = 0.
    bound = 100 * (4 * 0.7 + 10) / (4 + 10 + 2.5)
    assert bound == pytest.approx(77.5758, abs=1e-4)
    assert score(verified, 0.7) == pytest.approx(100 * 12.8 / 14)
    # 1,000 fake 1★ reviews drop the score to the bound and no further (the bound is tight: all reviews fresh).
    assert score(verified + flood, 0.7) == pytest.approx(bound, rel=1e-12)
    assert score(verified + flood * 1, 0.7) >= bound - 1e-9


@given(reviews=histories(max_superseded=0), extra=st.lists(st.tuples(ratings, evidences, ages), max_size=8),
       prior=priors)
def test_superseded_reviews_do_not_count(
    reviews: list[ScoredReview], extra: list[tuple[int, Evidence, int]], prior: float
) -> None:
    if not reviews:
        return
    before = score_reviews(reviews=reviews, params=P, now=NOW, prior_mean=prior)
    older = [
        ScoredReview(review_id=f"x{i}", reviewer=reviews[i % len(reviews)].reviewer, rating=rating,
                     time=NOW - age, evidence=evidence, superseded=True)
        for i, (rating, evidence, age) in enumerate(extra)
    ]
    after = score_reviews(reviews=reviews + older, params=P, now=NOW, prior_mean=prior)
    assert (after.score, after.lower90, after.effective_evidence) == (
        before.score, before.lower90, before.effective_evidence
    )
    assert after.counts.superseded == len(older)
    assert after.counts.live == before.counts.live


def test_one_reviewer_counts_once() -> None:
    one = ScoredReview(review_id="a", reviewer="0xabc", rating=1, time=NOW, evidence=Evidence.VERIFIED)
    again = dataclasses.replace(one, review_id="b", time=NOW - DAY)
    with pytest.raises(MalformedInput, match="two live reviews") as err:
        score_reviews(reviews=[one, again], params=P, now=NOW, prior_mean=0.7)
    assert err.value.reason.value == "invalid-review"
    with pytest.raises(MalformedInput, match="given twice"):
        score_reviews(reviews=[one, dataclasses.replace(one, superseded=True)], params=P, now=NOW, prior_mean=0.7)
    # Superseded: counted once, the 40-posts spammer weighs as one review.
    posts = [dataclasses.replace(one, review_id=f"p{i}", time=NOW - i * DAY, superseded=i > 0) for i in range(40)]
    assert score(posts, 0.7) == score(posts[:1], 0.7)


@given(reviews=histories(), prior=priors, later=st.integers(1, 10 * 365 * DAY))
def test_decay_pulls_toward_the_prior(reviews: list[ScoredReview], prior: float, later: int) -> None:
    now_gap = score(reviews, prior) - 100 * prior
    later_gap = score(reviews, prior, now=NOW + later) - 100 * prior
    assert abs(later_gap) <= abs(now_gap) + 1e-9
    assert later_gap * now_gap >= -1e-12  # never crosses to the other side of the prior
    # 100 half-lives on, nothing is left but the prior.
    assert score(reviews, prior, now=NOW + 100 * H) == pytest.approx(100 * prior, abs=1e-9)


@given(reviews=histories(), prior=priors)
def test_contributions_add_up_to_the_distance_from_the_prior(reviews: list[ScoredReview], prior: float) -> None:
    result = score_reviews(reviews=reviews, params=P, now=NOW, prior_mean=prior)
    parts = explain(reviews=reviews, params=P, now=NOW, prior_mean=prior)
    assert len(parts) == len(reviews)
    assert math.fsum(c.contribution for c in parts) == pytest.approx(result.score - 100 * prior, abs=1e-9)
    assert all(c.weight == 0.0 and c.contribution == 0.0 for c in parts if c.superseded)
    # Top movers are the head of the explain list (largest |contribution| first, zero contributions left out).
    nonzero = [c for c in parts if not c.superseded and c.contribution != 0.0]
    assert list(result.top_movers) == nonzero[:5]
    assert [abs(c.contribution) for c in nonzero] == sorted((abs(c.contribution) for c in nonzero), reverse=True)
