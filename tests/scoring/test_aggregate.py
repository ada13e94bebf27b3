"""The O(1) aggregate: agreement with the full recompute on random histories (supersessions, re-classifications),
persistence, and its guards."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.scoring import (
    DEFAULT_PARAMS,
    AggregateBucket,
    Evidence,
    ScoredReview,
    ScoringParams,
    SubjectAggregate,
    TrustScore,
    aggregate_add,
    aggregate_merge,
    aggregate_remove,
    aggregate_reviews,
    aggregate_supersede,
    decay_term,
    empty_aggregate,
    global_prior_mean,
    score_from_aggregate,
    score_reviews,
    select_candidates,
    widen_layout,
)
from service.scoring.aggregate import N_BUCKETS
from service.scoring.params import EVIDENCE_ORDER
from tests.scoring.strategies import DAY, MAX_AGE, NOW, evidences, priors, ratings

P = DEFAULT_PARAMS
H = P.half_life_seconds

Op = tuple[Any, ...]


def event_streams(
    rating: st.SearchStrategy[int], evidence: st.SearchStrategy[Evidence], *, min_size: int = 0
) -> st.SearchStrategy[list[Op]]:
    """Posts by up to 41 reviewers (a repeat poster supersedes or is superseded) and evidence re-classifications."""
    return st.lists(
        st.one_of(
            st.tuples(st.just("post"), st.integers(0, 40), rating, evidence, st.integers(0, MAX_AGE)),
            st.tuples(st.just("reclassify"), st.integers(0, 1000), evidence),
        ),
        min_size=min_size,
        max_size=120,
    )


# Spread over all 20 buckets, and concentrated in 4 so buckets overflow the 5 candidates each.
ops = event_streams(ratings, evidences)
crowded_ops = event_streams(
    st.sampled_from([1, 5]), st.sampled_from([Evidence.VERIFIED, Evidence.NONE]), min_size=60
)

def replay(events: list[Op]) -> tuple[SubjectAggregate, list[ScoredReview]]:
    """Apply a stream of events incrementally to an aggregate, keeping the full list alongside."""
    agg = empty_aggregate(params=P)
    by_id: dict[str, ScoredReview] = {}
    live: dict[str, str] = {}  # reviewer → live review id
    for n, event in enumerate(events):
        if event[0] == "post":
            _, who, rating, evidence, age = event
            new = ScoredReview(
                review_id=f"r{n}", reviewer=f"0x{who:040x}", rating=rating, time=NOW - age, evidence=evidence
            )
            current = by_id.get(live.get(new.reviewer, ""))
            if current is None:
                agg = aggregate_add(agg=agg, review=new)
                live[new.reviewer] = new.review_id
            elif new.time >= current.time:  # the latest by time wins
                agg = aggregate_supersede(agg=agg, old=current, new=new)
                by_id[current.review_id] = dataclasses.replace(current, superseded=True)
                live[new.reviewer] = new.review_id
            else:  # arrives late but is older: superseded from the start
                new = dataclasses.replace(new, superseded=True)
                agg = aggregate_add(agg=agg, review=new)
            by_id[new.review_id] = new
        elif live:
            _, k, evidence = event
            old = by_id[sorted(live.values())[k % len(live)]]
            changed = dataclasses.replace(old, evidence=evidence)
            agg = aggregate_add(agg=aggregate_remove(agg=agg, review=old), review=changed)
            by_id[old.review_id] = changed
    return agg, list(by_id.values())


def assert_same(agg_result: TrustScore, full: TrustScore) -> None:
    close = {"rel_tol": 1e-9, "abs_tol": 1e-12}
    for name in ("score", "lower90", "confidence", "effective_evidence", "verified_weight", "unverified_weight",
                 "unverified_cap_scale"):
        assert math.isclose(getattr(agg_result, name), getattr(full, name), **close), name
    for name in ("verified_share", "top_reviewer_share"):
        a, b = getattr(agg_result, name), getattr(full, name)
        assert (a is None) == (b is None), name
        if a is not None and b is not None:
            assert math.isclose(a, b, **close), name
    assert agg_result.counts == full.counts
    assert agg_result.histogram_verified == full.histogram_verified
    assert agg_result.histogram_unverified == full.histogram_unverified
    assert agg_result.last_review_at == full.last_review_at
    assert agg_result.as_of == full.as_of
    assert [m.review_id for m in agg_result.top_movers] == [m.review_id for m in full.top_movers]
    for a_m, f_m in zip(agg_result.top_movers, full.top_movers, strict=True):
        assert math.isclose(a_m.contribution, f_m.contribution, **close)
    if full.top_reviewer_share is not None and abs(full.top_reviewer_share - P.dominance_share) > 1e-9:
        assert agg_result.reviewer_dominates == full.reviewer_dominates


@given(events=st.one_of(ops, crowded_ops), prior=priors, later=st.sampled_from([0, 1, 90 * DAY, 3 * 365 * DAY]))
@settings(max_examples=200)
def test_aggregate_matches_full_recompute(events: list[Op], prior: float, later: int) -> None:
    agg, reviews = replay(events)
    now = NOW + later
    full = score_reviews(reviews=reviews, params=P, now=now, prior_mean=prior)
    from_agg = score_from_aggregate(
        agg=agg, params=P, now=now, prior_mean=prior, candidates=select_candidates(reviews=reviews, params=P)
    )
    assert_same(from_agg, full)
    # A rebuild from the final list agrees with the incrementally maintained aggregate.
    rebuilt = aggregate_reviews(reviews=reviews, params=P)
    assert rebuilt.counts == agg.counts
    assert rebuilt.superseded == agg.superseded
    for x, y in zip(rebuilt.decay_sums, agg.decay_sums, strict=True):
        assert math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-9)


def test_supersession_moves_the_old_review_out() -> None:
    old = ScoredReview(review_id="a", reviewer="0x1", rating=1, time=NOW - DAY, evidence=Evidence.VERIFIED)
    new = ScoredReview(review_id="b", reviewer="0x1", rating=5, time=NOW, evidence=Evidence.VERIFIED)
    agg = aggregate_supersede(agg=aggregate_add(agg=empty_aggregate(params=P), review=old), old=old, new=new)
    assert agg.count(Evidence.VERIFIED, 1) == 0
    assert agg.decay_sum(Evidence.VERIFIED, 1) == 0.0  # reset exactly, no residue
    assert agg.count(Evidence.VERIFIED, 5) == 1
    assert agg.superseded == 1
    assert agg.last_review_at == NOW
    with pytest.raises(ValueError, match="same reviewer"):
        aggregate_supersede(agg=agg, old=new, new=dataclasses.replace(new, review_id="c", reviewer="0x2"))
    with pytest.raises(ValueError, match="live"):
        aggregate_supersede(agg=agg, old=dataclasses.replace(new, superseded=True), new=new)


def test_removing_what_is_not_there_raises() -> None:
    review = ScoredReview(review_id="a", reviewer="0x1", rating=3, time=NOW, evidence=Evidence.NONE)
    with pytest.raises(ValueError, match="no live none/3"):
        aggregate_remove(agg=empty_aggregate(params=P), review=review)
    with pytest.raises(ValueError, match="no superseded"):
        aggregate_remove(agg=empty_aggregate(params=P), review=dataclasses.replace(review, superseded=True))


def test_decay_term_numerics() -> None:
    # In stored units a review made one half-life after the epoch counts 2, at the epoch 1.
    assert decay_term(time=P.decay_epoch, half_life_seconds=H, decay_epoch=P.decay_epoch) == 1.0
    assert decay_term(time=P.decay_epoch + H, half_life_seconds=H, decay_epoch=P.decay_epoch) == 2.0
    # 2026: 2^((2026-01-01 - 2020-01-01)/180 d) = 2^(2192 d / 180 d).
    assert decay_term(time=NOW, half_life_seconds=H, decay_epoch=P.decay_epoch) == pytest.approx(2 ** (2192 / 180))
    far = P.decay_epoch + 1001 * H
    with pytest.raises(ValueError, match="too far"):
        decay_term(time=far, half_life_seconds=H, decay_epoch=P.decay_epoch)
    with pytest.raises(ValueError, match="too far"):
        aggregate_add(
            agg=empty_aggregate(params=P),
            review=ScoredReview(review_id="a", reviewer="0x1", rating=3, time=far, evidence=Evidence.NONE),
        )


def test_centuries_ahead_the_paths_still_agree() -> None:
    # Year ~2400: stored terms near 2^770; reading scales them back by 2^-770.
    t = P.decay_epoch + 770 * H
    reviews = [
        ScoredReview(review_id=f"r{i}", reviewer=f"0x{i}", rating=1 + i % 5, time=t - i * 7 * DAY,
                     evidence=list(Evidence)[i % 4])
        for i in range(50)
    ]
    full = score_reviews(reviews=reviews, params=P, now=t, prior_mean=0.7)
    agg = score_from_aggregate(agg=aggregate_reviews(reviews=reviews, params=P), params=P, now=t, prior_mean=0.7,
                               candidates=select_candidates(reviews=reviews, params=P))
    assert_same(agg, full)


def test_a_review_from_the_future_is_scored_as_of_its_time() -> None:
    # Clock skew: a review stamped after `now` must not weigh more than λ; both paths score as of that time.
    reviews = [ScoredReview(review_id="a", reviewer="0x1", rating=5, time=NOW + 120, evidence=Evidence.VERIFIED)]
    full = score_reviews(reviews=reviews, params=P, now=NOW, prior_mean=0.7)
    agg = score_from_aggregate(agg=aggregate_reviews(reviews=reviews, params=P), params=P, now=NOW, prior_mean=0.7)
    assert full.as_of == agg.as_of == NOW + 120
    assert full.effective_evidence == 1.0
    assert agg.effective_evidence == pytest.approx(1.0, rel=1e-12)


def test_bucket_rows_round_trip_through_sqlite() -> None:
    """The documented persistence: one row per (evidence, rating), updated by atomic SQL increments."""
    reviews = [
        ScoredReview(review_id=f"r{i}", reviewer=f"0x{i}", rating=1 + (i * 7) % 5, time=NOW - i * 3 * DAY,
                     evidence=list(Evidence)[i % 4])
        for i in range(200)
    ]
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE bucket (evidence TEXT, rating INTEGER, count INTEGER NOT NULL DEFAULT 0,"
               " decay_sum REAL NOT NULL DEFAULT 0, PRIMARY KEY (evidence, rating))")
    for r in reviews:
        term = decay_term(time=r.time, half_life_seconds=H, decay_epoch=P.decay_epoch)
        db.execute("INSERT INTO bucket (evidence, rating) VALUES (?, ?) ON CONFLICT DO NOTHING",
                   (r.evidence.value, r.rating))
        db.execute("UPDATE bucket SET count = count + 1, decay_sum = decay_sum + ? WHERE evidence = ? AND rating = ?",
                   (term, r.evidence.value, r.rating))
    rows = [AggregateBucket(evidence=Evidence(e), rating=k, count=c, decay_sum=s)
            for e, k, c, s in db.execute("SELECT evidence, rating, count, decay_sum FROM bucket")]
    stored = SubjectAggregate.from_buckets(buckets=rows, superseded=0, last_review_at=NOW,
                                           half_life_seconds=H, decay_epoch=P.decay_epoch)
    folded = aggregate_reviews(reviews=reviews, params=P)
    assert stored.counts == folded.counts
    assert stored.decay_sums == folded.decay_sums  # float64 REAL, same additions in the same order: bit-exact
    assert SubjectAggregate.from_buckets(buckets=folded.buckets(), superseded=folded.superseded,
                                         last_review_at=folded.last_review_at, half_life_seconds=H,
                                         decay_epoch=P.decay_epoch) == folded


def test_aggregate_guards() -> None:
    agg = empty_aggregate(params=P)
    other = ScoringParams(version="test-h90", half_life_seconds=90 * DAY)
    with pytest.raises(ValueError, match="rebuild the aggregate"):
        score_from_aggregate(agg=agg, params=other, now=NOW, prior_mean=0.7)
    with pytest.raises(ValueError, match="rebuild the aggregate"):
        global_prior_mean(agg=agg, params=other)
    with pytest.raises(ValueError, match="rebuild the aggregate"):
        aggregate_merge(aggregates=[agg], params=other)
    with pytest.raises(ValueError, match=f"exactly {N_BUCKETS} buckets"):
        SubjectAggregate(half_life_seconds=H, decay_epoch=P.decay_epoch, counts=(0,) * (N_BUCKETS - 1))
    with pytest.raises(ValueError, match=">= 0"):
        SubjectAggregate(half_life_seconds=H, decay_epoch=P.decay_epoch, counts=(-1,) + (0,) * (N_BUCKETS - 1))
    with pytest.raises(ValueError, match="finite"):
        SubjectAggregate(half_life_seconds=H, decay_epoch=P.decay_epoch,
                         decay_sums=(math.nan,) + (0.0,) * (N_BUCKETS - 1))  # fmt: skip
    row = AggregateBucket(evidence=Evidence.NONE, rating=1, count=1, decay_sum=1.0)
    with pytest.raises(ValueError, match="duplicate bucket"):
        SubjectAggregate.from_buckets(buckets=[row, row], superseded=0, last_review_at=None, half_life_seconds=H,
                                      decay_epoch=P.decay_epoch)
    with pytest.raises(ValueError, match="prior_mean"):
        score_from_aggregate(agg=agg, params=P, now=NOW, prior_mean=0.99)


def test_candidates_must_match_the_aggregate() -> None:
    reviews = [ScoredReview(review_id=f"r{i}", reviewer=f"0x{i}", rating=5, time=NOW - i, evidence=Evidence.VERIFIED)
               for i in range(8)]
    agg = aggregate_reviews(reviews=reviews, params=P)
    good = select_candidates(reviews=reviews, params=P)
    assert [c.review_id for c in good] == ["r0", "r1", "r2", "r3", "r4"]  # the 5 most recent of the bucket
    with pytest.raises(ValueError, match="8 live reviews but 4 candidates"):
        score_from_aggregate(agg=agg, params=P, now=NOW, prior_mean=0.7, candidates=good[:4])
    with pytest.raises(ValueError, match="superseded"):
        score_from_aggregate(agg=agg, params=P, now=NOW, prior_mean=0.7,
                             candidates=[dataclasses.replace(good[0], superseded=True), *good[1:]])
    without = score_from_aggregate(agg=agg, params=P, now=NOW, prior_mean=0.7)
    assert without.top_movers == ()
    assert without.top_reviewer_share is None


def test_global_prior_mean() -> None:
    def verified(i: int, rating: int, age: int) -> ScoredReview:
        return ScoredReview(review_id=f"g{i}", reviewer=f"0x{i}", rating=rating, time=NOW - age,
                            evidence=Evidence.VERIFIED)

    empty = empty_aggregate(params=P)
    assert global_prior_mean(agg=empty, params=P) == 0.7
    unverified_only = aggregate_reviews(
        reviews=[ScoredReview(review_id="u", reviewer="0xu", rating=1, time=NOW, evidence=Evidence.NONE)], params=P
    )
    assert global_prior_mean(agg=unverified_only, params=P) == 0.7
    # Two subjects: two fresh 5★ (weight 1 each) and one 1★ a half-life old (weight ½): (2·1 + ½·0)/2.5 = 0.8.
    a = aggregate_reviews(reviews=[verified(1, 5, 0), verified(2, 5, 0)], params=P)
    b = aggregate_reviews(reviews=[verified(3, 1, H)], params=P)
    merged = aggregate_merge(aggregates=[a, b, unverified_only], params=P)
    assert global_prior_mean(agg=merged, params=P) == pytest.approx(0.8, rel=1e-12)
    assert merged.counts == tuple(x + y + z for x, y, z in zip(a.counts, b.counts, unverified_only.counts,
                                                               strict=True))
    # All 5★ → clamped to 0.95 so the Beta stays proper.
    assert global_prior_mean(agg=a, params=P) == 0.95


def test_an_older_bucket_layout_widens_exactly() -> None:
    # Params v1 stored 4 evidence classes × 5 ratings; v2 appends payment-backed and tx-interaction.
    reviews = [ScoredReview(review_id=f"r{i}", reviewer=f"0x{i}", rating=1 + i % 5, time=NOW - i * DAY,
                            evidence=EVIDENCE_ORDER[i % 4]) for i in range(12)]  # fmt: skip
    agg = aggregate_reviews(reviews=reviews, params=P)
    old_counts, old_sums = agg.counts[:20], agg.decay_sums[:20]  # what a v1 store holds
    widened = SubjectAggregate(half_life_seconds=H, decay_epoch=P.decay_epoch, counts=widen_layout(old_counts, fill=0),
                               decay_sums=widen_layout(old_sums, fill=0.0), superseded=agg.superseded,
                               last_review_at=agg.last_review_at)  # fmt: skip
    assert widened == agg
    with pytest.raises(ValueError, match="do not fit"):
        widen_layout((0,) * 7, fill=0)
    with pytest.raises(ValueError, match="do not fit"):
        widen_layout((0,) * (N_BUCKETS + 5), fill=0)
