"""The global prior without a global row (issue #15): writers change only their subjects' aggregates; the global
aggregate is folded from them when read. Once folded it equals what the old global row held — the same deltas
applied, write after write, to one aggregate — so every reputation number is unchanged. On SQLite and PostgreSQL."""

from __future__ import annotations

import math
import random

from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.scoring import (
    DEFAULT_PARAMS,
    Evidence,
    ScoredReview,
    SubjectAggregate,
    aggregate_add,
    aggregate_remove,
    empty_aggregate,
    global_prior_mean,
    score_reviews,
)
from service.store.engine import make_engine
from service.store.tables import SubjectAggregateRow
from service.workflows.aggregates import GLOBAL_KEY, global_aggregate
from service.workflows.reputation import DbContext, reputation
from service.workflows.score_audit import recompute
from tests.api.test_reputation_store import NOW, Inserted, insert_review, random_history
from tests.support.db import migrated_engine

engine = migrated_engine  # a fresh, migrated database per test


def _scored(h: Inserted, *, superseded: bool) -> ScoredReview:
    return ScoredReview(review_id=h.id, reviewer=h.attester, rating=h.rating, time=h.time,
                        evidence=Evidence(h.evidence), superseded=superseded)  # fmt: skip


def _old_global_row(history: list[Inserted]) -> SubjectAggregate:
    """What the global row held: every write's delta (retire the superseded review, add the new one) applied to
    one aggregate in write order, as writers did under its lock."""
    agg = empty_aggregate(params=DEFAULT_PARAMS)
    live: dict[tuple[str, str], Inserted] = {}
    for h in history:  # in time order: each review supersedes the reviewer's live one
        previous = live.get((h.subject, h.attester))
        if previous is not None:
            agg = aggregate_remove(agg=agg, review=_scored(previous, superseded=False))
            agg = aggregate_add(agg=agg, review=_scored(previous, superseded=True))
        agg = aggregate_add(agg=agg, review=_scored(h, superseded=False))
        live[(h.subject, h.attester)] = h
    return agg


def _assert_same(folded: SubjectAggregate, old: SubjectAggregate) -> None:
    assert (folded.counts, folded.superseded, folded.last_review_at) == (old.counts, old.superseded,
                                                                          old.last_review_at)  # fmt: skip
    assert all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12) for a, b in zip(folded.decay_sums, old.decay_sums,
                                                                                 strict=True))  # fmt: skip


def test_folded_global_equals_the_old_global_row_and_scores_are_unchanged(engine: Engine) -> None:
    rng = random.Random(15)
    subjects = [f"did:web:s{i}.example" for i in range(6)]
    history = random_history(rng, subjects=subjects, n=150)
    for h in history:
        superseded = insert_review(engine, rid=h.id, subject=h.subject, attester=h.attester, rating=h.rating,
                                   time=h.time, evidence=h.evidence)  # fmt: skip
        if superseded is not None:
            next(o for o in history if o.id == superseded).superseded_by = h.id

    with Session(engine) as s:  # no writer keeps a global row any more
        assert s.get(SubjectAggregateRow, GLOBAL_KEY) is None
    old = _old_global_row(history)
    folded = global_aggregate(engine=engine, params=DEFAULT_PARAMS)
    _assert_same(folded, old)
    old_prior = global_prior_mean(agg=old, params=DEFAULT_PARAMS)
    ctx = DbContext(engine=engine, clock=lambda: NOW)
    for subject in subjects:
        score = reputation(rt=ctx, did=subject).score
        assert math.isclose(score.prior_mean, old_prior, rel_tol=1e-12)
        reviews = [_scored(h, superseded=h.superseded_by is not None) for h in history if h.subject == subject]
        exact = score_reviews(reviews=reviews, params=DEFAULT_PARAMS, now=NOW, prior_mean=old_prior)
        assert math.isclose(score.score, exact.score, rel_tol=1e-9)
        assert math.isclose(score.lower90, exact.lower90, rel_tol=1e-9)
        assert score.counts == exact.counts

    report = recompute(rt=ctx, did=None)  # the rebuild agrees, and reports the same prior before and after
    assert (report.disagreements, report.global_differences) == (0, ())
    assert math.isclose(report.prior_mean_after, old_prior, rel_tol=1e-12)


def test_a_commit_of_this_process_is_in_the_next_fold_at_once(engine: Engine) -> None:
    ctx = DbContext(engine=engine, clock=lambda: NOW)
    insert_review(engine, rid="a1", subject="did:web:a.example", attester="0x" + "a" * 40, rating=5, time=NOW - 10,
                  evidence="verified")  # fmt: skip
    first = reputation(rt=ctx, did="did:web:b.example").score.prior_mean
    insert_review(engine, rid="b1", subject="did:web:b.example", attester="0x" + "b" * 40, rating=1, time=NOW - 5,
                  evidence="verified")  # fmt: skip
    second = reputation(rt=ctx, did="did:web:b.example").score.prior_mean  # no waiting for the fold's max age
    assert second < first
    assert math.isclose(second, global_prior_mean(agg=global_aggregate(engine=engine, wait=True, max_age=0.0),
                                                  params=DEFAULT_PARAMS))  # fmt: skip


def test_another_process_write_is_folded_within_the_max_age(engine: Engine) -> None:
    before = global_aggregate(engine=engine)
    other = make_engine(url=engine.url.render_as_string(hide_password=False))  # another process's pool
    try:
        insert_review(other, rid="c1", subject="did:web:c.example", attester="0x" + "c" * 40, rating=4, time=NOW,
                      evidence="verified")  # fmt: skip
    finally:
        other.dispose()
    # Within the max age (an hour here, so the machine's speed cannot matter) this process answers from its fold;
    # a fold older than the max age reads the other process's write (``wait``: in this call, not in the background).
    assert global_aggregate(engine=engine, max_age=3600.0) == before
    assert global_aggregate(engine=engine, wait=True, max_age=0.0).live_count() == before.live_count() + 1
    assert global_aggregate(engine=engine, max_age=3600.0).live_count() == before.live_count() + 1


def test_superseding_another_process_write_the_fold_has_not_seen_refolds_instead_of_failing(engine: Engine) -> None:
    """Process B's fold predates A's review; B then supersedes it (its ``before`` holds A's review): shifting the
    fold would leave a bucket at −1. The commit must stand, and B's next read folds again (it used to answer 500
    after committing — two API processes on one database, tests/concurrency)."""
    attester, subject = "0x" + "d" * 40, "did:web:d.example"
    folded = global_aggregate(engine=engine, wait=True, max_age=0.0)  # B's fold: nothing yet
    other = make_engine(url=engine.url.render_as_string(hide_password=False))  # process A
    try:
        insert_review(other, rid="d1", subject=subject, attester=attester, rating=5, time=NOW - 10,
                      evidence="verified")  # fmt: skip
    finally:
        other.dispose()
    superseded = insert_review(engine, rid="d2", subject=subject, attester=attester, rating=1, time=NOW - 5,
                               evidence="none")  # fmt: skip
    assert superseded == "d1"
    now_global = global_aggregate(engine=engine, max_age=3600.0)  # a fresh fold, not the stale one shifted
    assert now_global.live_count() == folded.live_count() + 1
    assert now_global == global_aggregate(engine=engine, wait=True, max_age=0.0)
