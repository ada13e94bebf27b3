"""Trust score of a service DID: O(1) reads from the maintained aggregates, or an exact O(n) explain.

Read cost of :func:`reputation` does not depend on the number of reviews: one query for the subject's aggregate
row (the global prior comes from the per-process fold of ``aggregates.global_aggregate``), one UNION ALL query
for at most 20 × ``candidates_per_bucket`` recent reviews (the candidates for "top movers" and the top reviewer
share). The prior is O(subjects) once per fold, not per read. ``explain=True`` reads every review of the subject.

Stale aggregates (stored under other scoring units, e.g. after a half-life change) are never an error: the score
is then computed exactly from the reviews (``Reputation.aggregates == "recomputed"``) and the context's
``aggregates_stale`` hook is called so the service rebuilds them in the background. The ranking lives in
``service.workflows.ranking``, the audit/rebuild in ``service.workflows.score_audit``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.dids import normalize_did
from service.errors import StaleAggregate
from service.scoring import (
    DEFAULT_PARAMS,
    Contribution,
    Evidence,
    ScoredReview,
    ScoringParams,
    SubjectAggregate,
    TrustScore,
    aggregate_merge,
    aggregate_reviews,
    empty_aggregate,
    global_prior_mean,
    score_from_aggregate,
    score_reviews,
)
from service.scoring import explain as explain_reviews
from service.store.engine import session_scope
from service.store.scoring_queries import (
    ReviewFacts,
    aggregate_states,
    begin_snapshot,
    bucket_candidates,
    iter_reviews_by_subject,
    subject_reviews,
)
from service.workflows.aggregates import aggregate_from_state, global_aggregate
from service.workflows.erc8004_reputation import score_stream

RATINGS = (1, 2, 3, 4, 5)
# Aggregate row and candidates are read by two statements; a write landing between them makes the candidate
# counts disagree with the aggregate. Re-read a few times, then answer without top movers rather than fail.
_READ_ATTEMPTS = 4

AggregateSource = Literal["stored", "recomputed"]


def _noop() -> None:
    return None


class ScoreContext(Protocol):
    """What the score needs from the runtime: the database, a clock, the scoring parameters and the hook that
    asks for stale aggregates to be rebuilt (``Runtime`` fits; so does :class:`DbContext` for the CLI, which must
    not start a chain)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    @property
    def params(self) -> ScoringParams: ...

    @property
    def aggregates_stale(self) -> Callable[[], None]: ...


@dataclass
class DbContext:
    """A :class:`ScoreContext` with just a database (``omatrust score``)."""

    engine: Engine
    clock: Callable[[], float] = time.time
    params: ScoringParams = DEFAULT_PARAMS
    aggregates_stale: Callable[[], None] = _noop


@dataclass(frozen=True, slots=True)
class Reputation:
    """A subject's score. ``did`` is the normalized subject. With ``explain``, the score comes from the exact
    recompute and ``contributions`` lists every review's part (live ones by |contribution|, then superseded).
    ``aggregates``: ``recomputed`` when stale stored aggregates were bypassed for an exact computation."""

    did: str
    score: TrustScore
    contributions: tuple[Contribution, ...] | None = None
    aggregates: AggregateSource = "stored"


# -- helpers shared with the ranking and the audit ----------------------------------------------------------------


def scored_fact(f: ReviewFacts) -> ScoredReview:
    """A review read by ``store.scoring_queries`` as the scoring core sees it."""
    return ScoredReview(
        review_id=f.id,
        reviewer=f.attester,
        rating=f.rating_value,
        time=f.review_time,
        evidence=Evidence(f.evidence),
        superseded=f.superseded,
        attestation_uid=f.attestation_uid,
    )


def _wanted_buckets(agg: SubjectAggregate, params: ScoringParams) -> list[tuple[str, int, int]]:
    """(evidence, rating, how many candidates it must yield) for every non-empty bucket."""
    return [
        (e.value, r, min(agg.count(e, r), params.candidates_per_bucket))
        for e in Evidence
        for r in RATINGS
        if agg.count(e, r) > 0
    ]


def _candidates_match(facts: Sequence[ReviewFacts], wanted: Sequence[tuple[str, int, int]]) -> bool:
    got: dict[tuple[str, int], int] = {}
    for f in facts:
        got[(f.evidence, f.rating_value)] = got.get((f.evidence, f.rating_value), 0) + 1
    return got == {(e, r): n for e, r, n in wanted}


def stored_candidates(
    session: Session, *, subject: str, agg: SubjectAggregate, params: ScoringParams
) -> list[ScoredReview] | None:
    """The recent reviews of each of ``agg``'s buckets (the top-mover candidates ``score_from_aggregate`` takes), or
    None when their counts disagree with ``agg`` (a write landed between the two reads)."""
    wanted = _wanted_buckets(agg, params)
    facts = bucket_candidates(session, subject_normalized=subject, buckets=[(e, r) for e, r, _ in wanted],
                              per_bucket=params.candidates_per_bucket)  # fmt: skip
    return [scored_fact(f) for f in facts] if _candidates_match(facts, wanted) else None


def folded_prior(*, rt: ScoreContext, params: ScoringParams) -> float:
    """μ₀ from the global aggregate folded from the stored subject aggregates (``aggregates.global_aggregate``:
    at most ``GLOBAL_FOLD_MAX_AGE`` seconds old). Raises StaleAggregate (a row in other scoring units)."""
    return global_prior_mean(agg=global_aggregate(engine=rt.engine, params=params), params=params)


def exact_global(session: Session, *, params: ScoringParams) -> SubjectAggregate:
    """The global aggregate computed from every review (O(all reviews)): what a stale global row stands for."""
    total = empty_aggregate(params=params)
    for group in iter_reviews_by_subject(session):
        total = aggregate_merge(aggregates=[total, aggregate_reviews(reviews=map(scored_fact, group), params=params)],
                                params=params)  # fmt: skip
    return total


def _prior(session: Session, *, rt: ScoreContext, params: ScoringParams) -> tuple[float, bool]:
    """(μ₀, whether it had to be computed exactly because a stored aggregate is stale)."""
    try:
        return folded_prior(rt=rt, params=params), False
    except StaleAggregate:
        rt.aggregates_stale()
        return global_prior_mean(agg=exact_global(session, params=params), params=params), True


# -- reading ------------------------------------------------------------------------------------------------------


def reputation(
    *, rt: ScoreContext, did: str, explain: bool = False, params: ScoringParams | None = None
) -> Reputation:
    """The trust score of ``did`` now (under ``params``, default the context's). A subject without reviews gets the
    prior-only score and zero counts. Stale aggregates: computed exactly instead (see the module docstring).

    Raises:
        MalformedInput: (explain or stale aggregates only) the stored reviews break the one-live-review-per-
            reviewer rule.
    """
    params = params or rt.params
    subject = normalize_did(did)
    now = int(rt.clock())
    stream = score_stream(engine=rt.engine, did=subject, params=params)  # ERC-8004: () unless its weight is > 0
    if explain:
        return _exact(rt=rt, subject=subject, now=now, params=params, explain=True, erc8004=stream)
    agg = empty_aggregate(params=params)
    try:
        prior = folded_prior(rt=rt, params=params)
    except StaleAggregate:
        rt.aggregates_stale()
        return _exact(rt=rt, subject=subject, now=now, params=params, explain=False, erc8004=stream)
    for _ in range(_READ_ATTEMPTS):
        with session_scope(rt.engine) as session:
            begin_snapshot(session)
            states = aggregate_states(session, keys=[subject])
            try:
                agg = aggregate_from_state(states[subject].state if subject in states else {}, params=params)
            except StaleAggregate:
                rt.aggregates_stale()
                break
            candidates = stored_candidates(session, subject=subject, agg=agg, params=params)
        if candidates is not None:
            score = score_from_aggregate(agg=agg, params=params, now=now, prior_mean=prior, candidates=candidates,
                                         erc8004=stream)  # fmt: skip
            return Reputation(did=subject, score=score)
    else:
        # Not reached with a snapshot read; kept for databases without one. The aggregate alone is still exact.
        return Reputation(did=subject, score=score_from_aggregate(agg=agg, params=params, now=now, prior_mean=prior,
                                                                  erc8004=stream))  # fmt: skip
    return _exact(rt=rt, subject=subject, now=now, params=params, explain=False, erc8004=stream)


def _exact(
    *, rt: ScoreContext, subject: str, now: int, params: ScoringParams, explain: bool, erc8004: Sequence[float] = ()
) -> Reputation:
    """The score from every review of the subject (O(n)); with ``explain`` each review's contribution too."""
    with session_scope(rt.engine) as session:
        begin_snapshot(session)
        prior, prior_recomputed = _prior(session, rt=rt, params=params)
        reviews = [scored_fact(f) for f in subject_reviews(session, subject_normalized=subject)]
    # Without explain this is only reached when a stored aggregate was stale.
    stale = prior_recomputed or not explain
    score = score_reviews(reviews=reviews, params=params, now=now, prior_mean=prior, erc8004=erc8004)
    parts = None
    if explain:
        parts = explain_reviews(reviews=reviews, params=params, now=now, prior_mean=prior, erc8004=erc8004)
    return Reputation(did=subject, score=score, contributions=parts, aggregates="recomputed" if stale else "stored")
