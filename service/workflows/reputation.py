"""Trust score of a service DID: O(1) reads from the maintained aggregates, an exact O(n) explain, a ranking of
services, and an audit that rebuilds aggregates from the reviews table and checks both paths agree.

Read cost of :func:`reputation` does not depend on the number of reviews: one query for the subject's and the
global aggregate rows, one UNION ALL query for at most 20 × ``candidates_per_bucket`` recent reviews (the
candidates for "top movers" and the top reviewer share). ``explain=True`` reads every review of the subject.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.dids import normalize_did
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
from service.store.aggregates import load_for_update, save
from service.store.engine import session_scope
from service.store.scoring_queries import (
    ReviewFacts,
    aggregate_states,
    begin_snapshot,
    bucket_candidates,
    delete_aggregates,
    ensure_aggregate_row,
    iter_aggregate_states,
    iter_reviews_by_subject,
    subject_reviews,
)
from service.workflows.aggregates import GLOBAL_KEY, aggregate_from_state, aggregate_to_state

RankSort = Literal["lower90", "score", "reviews"]
RANK_SORTS: tuple[RankSort, ...] = ("lower90", "score", "reviews")
RATINGS = (1, 2, 3, 4, 5)
# Aggregate row and candidates are read by two statements; a write landing between them makes the candidate
# counts disagree with the aggregate. Re-read a few times, then answer without top movers rather than fail.
_READ_ATTEMPTS = 4
# Relative/absolute tolerance when comparing the aggregate path with the exact recompute (float rounding only).
_REL_TOL = 1e-9
_ABS_TOL = 1e-9


class ScoreContext(Protocol):
    """What the score needs from the runtime: the database and a clock (``Runtime`` fits; so does a DB-only
    context for the CLI, which must not start a chain)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def clock(self) -> Callable[[], float]: ...


@dataclass
class DbContext:
    """A :class:`ScoreContext` with just a database (``omatrust score``)."""

    engine: Engine
    clock: Callable[[], float] = time.time


@dataclass(frozen=True, slots=True)
class Reputation:
    """A subject's score. ``did`` is the normalized subject. With ``explain``, the score comes from the exact
    recompute and ``contributions`` lists every review's part (live ones by |contribution|, then superseded)."""

    did: str
    score: TrustScore
    contributions: tuple[Contribution, ...] | None = None


# -- reading ----------------------------------------------------------------------------------------------------


def _scored(f: ReviewFacts) -> ScoredReview:
    return ScoredReview(
        review_id=f.id,
        reviewer=f.attester,
        rating=f.rating_value,
        time=f.review_time,
        evidence=Evidence(f.evidence),
        superseded=f.superseded,
        attestation_uid=f.attestation_uid,
    )


def _wanted(agg: SubjectAggregate, params: ScoringParams) -> list[tuple[str, int, int]]:
    """(evidence, rating, how many candidates it must yield) for every non-empty bucket."""
    return [
        (e.value, r, min(agg.count(e, r), params.candidates_per_bucket))
        for e in Evidence
        for r in RATINGS
        if agg.count(e, r) > 0
    ]


def _candidates(
    session: Session, *, subject: str, wanted: Sequence[tuple[str, int, int]], params: ScoringParams
) -> list[ReviewFacts]:
    buckets = [(e, r) for e, r, _ in wanted]
    return bucket_candidates(
        session, subject_normalized=subject, buckets=buckets, per_bucket=params.candidates_per_bucket
    )


def _candidates_match(facts: Sequence[ReviewFacts], wanted: Sequence[tuple[str, int, int]]) -> bool:
    got: dict[tuple[str, int], int] = {}
    for f in facts:
        got[(f.evidence, f.rating_value)] = got.get((f.evidence, f.rating_value), 0) + 1
    return got == {(e, r): n for e, r, n in wanted}


def _global_prior(state: dict[str, Any] | None, params: ScoringParams) -> float:
    return global_prior_mean(agg=aggregate_from_state(state or {}, params=params), params=params)


def reputation(
    *, rt: ScoreContext, did: str, explain: bool = False, params: ScoringParams = DEFAULT_PARAMS
) -> Reputation:
    """The trust score of ``did`` now. A subject without reviews gets the prior-only score and zero counts.

    Raises:
        ValueError: a stored aggregate is in other scoring units (half-life/epoch changed: run
            ``omatrust score --recompute``).
        MalformedInput: (explain only) the stored reviews break the one-live-review-per-reviewer rule.
    """
    subject = normalize_did(did)
    now = int(rt.clock())
    if explain:
        return _explained(rt=rt, subject=subject, now=now, params=params)
    agg = empty_aggregate(params=params)
    prior = params.prior_mean_fallback
    for _ in range(_READ_ATTEMPTS):
        with session_scope(rt.engine) as session:
            begin_snapshot(session)
            states = aggregate_states(session, keys=[subject, GLOBAL_KEY])
            agg = aggregate_from_state(states[subject].state if subject in states else {}, params=params)
            prior = _global_prior(states[GLOBAL_KEY].state if GLOBAL_KEY in states else None, params)
            wanted = _wanted(agg, params)
            facts = _candidates(session, subject=subject, wanted=wanted, params=params)
        if _candidates_match(facts, wanted):
            candidates = [_scored(f) for f in facts]
            score = score_from_aggregate(agg=agg, params=params, now=now, prior_mean=prior, candidates=candidates)
            return Reputation(did=subject, score=score)
    # Not reached with a snapshot read; kept for databases without one. The aggregate alone is still exact.
    return Reputation(did=subject, score=score_from_aggregate(agg=agg, params=params, now=now, prior_mean=prior))


def _explained(*, rt: ScoreContext, subject: str, now: int, params: ScoringParams) -> Reputation:
    with session_scope(rt.engine) as session:
        states = aggregate_states(session, keys=[GLOBAL_KEY])
        prior = _global_prior(states[GLOBAL_KEY].state if GLOBAL_KEY in states else None, params)
        reviews = [_scored(f) for f in subject_reviews(session, subject_normalized=subject)]
    score = score_reviews(reviews=reviews, params=params, now=now, prior_mean=prior)
    parts = explain_reviews(reviews=reviews, params=params, now=now, prior_mean=prior)
    return Reputation(did=subject, score=score, contributions=parts)


# -- ranking ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RankedService:
    did: str
    score: TrustScore


@dataclass(frozen=True, slots=True)
class RankingPage:
    sort: RankSort
    as_of: int
    prior_mean: float
    params_version: str
    items: tuple[RankedService, ...]
    next_cursor: str | None
    total: int


def _sort_value(score: TrustScore, sort: RankSort) -> float:
    if sort == "reviews":
        return float(score.counts.live)
    return score.lower90 if sort == "lower90" else score.score


@dataclass
class _Snapshot:
    key: str
    built_at: float
    as_of: int
    prior_mean: float
    scores: list[RankedService]
    orders: dict[str, list[RankedService]] = field(default_factory=dict)


class RankingCache:
    """Scores of every subject for the ranking, rebuilt when any review was written (the global aggregate row
    changed) or after ``max_age`` seconds (decay moves scores slowly). A rebuild is O(subjects): it scores each
    aggregate without candidates. One rebuild at a time; others wait for it."""

    def __init__(self, *, max_age: float = 60.0) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def snapshot(self, *, rt: ScoreContext, params: ScoringParams) -> _Snapshot:
        with session_scope(rt.engine) as session:
            state = aggregate_states(session, keys=[GLOBAL_KEY]).get(GLOBAL_KEY)
        key = params.version + json.dumps(state.state if state else {}, sort_keys=True)
        with self._lock:
            snap = self._snapshot
            if snap is None or snap.key != key or rt.clock() - snap.built_at > self.max_age:
                snap = _build_snapshot(rt=rt, params=params, key=key, global_state=state.state if state else None)
                self._snapshot = snap
            return snap


def _build_snapshot(
    *, rt: ScoreContext, params: ScoringParams, key: str, global_state: dict[str, Any] | None
) -> _Snapshot:
    now = int(rt.clock())
    prior = _global_prior(global_state, params)
    scores: list[RankedService] = []
    with session_scope(rt.engine) as session:
        for row in iter_aggregate_states(session, exclude=(GLOBAL_KEY,)):
            agg = aggregate_from_state(row.state, params=params)
            if agg.live_count() == 0:
                continue
            score = score_from_aggregate(agg=agg, params=params, now=now, prior_mean=prior)
            scores.append(RankedService(did=row.key, score=score))
    return _Snapshot(key=key, built_at=rt.clock(), as_of=now, prior_mean=prior, scores=scores)


class BadCursor(ValueError):
    """A ranking cursor this service did not issue (or issued for another sort)."""


def _encode_cursor(sort: RankSort, value: float, did: str) -> str:
    raw = json.dumps([sort, value, did], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: RankSort) -> tuple[float, str]:
    """Raises BadCursor on anything but a cursor :func:`ranking` issued for this sort."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("bad cursor") from exc
    if not (
        isinstance(value, list)
        and len(value) == 3
        and value[0] == sort
        and isinstance(value[1], int | float)
        and not isinstance(value[1], bool)
        and isinstance(value[2], str)
    ):
        raise BadCursor("bad cursor")
    try:
        number = float(value[1])
    except OverflowError as exc:
        raise BadCursor("bad cursor") from exc
    if not math.isfinite(number):
        raise BadCursor("bad cursor")
    return number, value[2]


def ranking(
    *,
    rt: ScoreContext,
    sort: RankSort = "lower90",
    limit: int = 20,
    cursor: str | None = None,
    cache: RankingCache | None = None,
    params: ScoringParams = DEFAULT_PARAMS,
) -> RankingPage:
    """Services with at least one live review, best first by ``sort`` (ties by DID), keyset-paginated.

    ``lower90`` (default) ranks by the 10th percentile, so a few glowing reviews do not outrank a long verified
    record; ``score`` by the posterior mean; ``reviews`` by live review count.

    Raises:
        BadCursor: ``cursor`` was not issued by this function for ``sort``.
        ValueError: ``sort`` unknown or ``limit`` < 1; a stored aggregate is in other scoring units.
    """
    if sort not in RANK_SORTS or limit < 1:
        raise ValueError("bad sort or limit")
    after = _decode_cursor(cursor, sort) if cursor else None
    snap = (cache or RankingCache()).snapshot(rt=rt, params=params)
    order = snap.orders.get(sort)
    if order is None:
        order = sorted(snap.scores, key=lambda s: (-_sort_value(s.score, sort), s.did))
        snap.orders[sort] = order
    start = 0
    if after is not None:
        value, did = after
        # First item strictly after (value, did) in (value desc, did asc) order: binary search.
        lo, hi = 0, len(order)
        while lo < hi:
            mid = (lo + hi) // 2
            v = _sort_value(order[mid].score, sort)
            if v > value or (v == value and order[mid].did <= did):
                lo = mid + 1
            else:
                hi = mid
        start = lo
    items = order[start : start + limit]
    more = start + limit < len(order)
    next_cursor = _encode_cursor(sort, _sort_value(items[-1].score, sort), items[-1].did) if more and items else None
    return RankingPage(
        sort=sort,
        as_of=snap.as_of,
        prior_mean=snap.prior_mean,
        params_version=params.version,
        items=tuple(items),
        next_cursor=next_cursor,
        total=len(order),
    )


# -- audit: full recompute --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubjectCheck:
    """Stored aggregate (scored with its candidates) against the exact recompute from the subject's reviews."""

    did: str
    reviews: int
    differences: tuple[str, ...]
    stored: TrustScore | None  # None when the stored aggregate could not be read (other units)
    recomputed: TrustScore

    @property
    def agrees(self) -> bool:
        return not self.differences


@dataclass(frozen=True, slots=True)
class RecomputeReport:
    """``checks`` has every checked subject when one DID was recomputed, only disagreeing ones otherwise."""

    subjects: int
    disagreements: int
    checks: tuple[SubjectCheck, ...]
    global_differences: tuple[str, ...]
    prior_mean_before: float
    prior_mean_after: float


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)


_FLOAT_FIELDS = (
    "prior_mean",
    "score",
    "lower90",
    "confidence",
    "effective_evidence",
    "verified_weight",
    "unverified_weight",
    "unverified_cap_scale",
    "verified_share",
    "top_reviewer_share",
)
_EXACT_FIELDS = (
    "params_version",
    "as_of",
    "counts",
    "histogram_verified",
    "histogram_unverified",
    "last_review_at",
    "reviewer_dominates",
)


def compare_scores(*, stored: TrustScore, exact: TrustScore) -> tuple[str, ...]:
    """Names of the fields where two scores of the same subject differ beyond float rounding (empty = agree)."""
    diffs = [f for f in _EXACT_FIELDS if getattr(stored, f) != getattr(exact, f)]
    diffs += [f for f in _FLOAT_FIELDS if not _close(getattr(stored, f), getattr(exact, f))]
    if [m.review_id for m in stored.top_movers] != [m.review_id for m in exact.top_movers]:
        diffs.append("top_movers")
    elif not all(
        _close(a.contribution, b.contribution) for a, b in zip(stored.top_movers, exact.top_movers, strict=True)
    ):
        diffs.append("top_movers.contribution")
    return tuple(diffs)


def _aggregate_differences(stored: SubjectAggregate | None, rebuilt: SubjectAggregate) -> list[str]:
    if stored is None:
        return ["aggregate.units"]
    diffs = [
        f"aggregate.{f}"
        for f in ("counts", "superseded", "last_review_at")
        if getattr(stored, f) != getattr(rebuilt, f)
    ]
    if not all(_close(a, b) for a, b in zip(stored.decay_sums, rebuilt.decay_sums, strict=True)):
        diffs.append("aggregate.decay_sums")
    return diffs


def _read_aggregate(state: dict[str, Any] | None, params: ScoringParams) -> SubjectAggregate | None:
    try:
        return aggregate_from_state(state or {}, params=params)
    except (ValueError, KeyError, TypeError):
        return None


def _check_subject(
    session: Session, *, subject: str, reviews: list[ScoredReview], prior: float, now: int, params: ScoringParams
) -> tuple[SubjectCheck, SubjectAggregate]:
    state = aggregate_states(session, keys=[subject]).get(subject)
    stored_agg = _read_aggregate(state.state if state else None, params)
    rebuilt = aggregate_reviews(reviews=reviews, params=params)
    exact = score_reviews(reviews=reviews, params=params, now=now, prior_mean=prior)
    diffs = _aggregate_differences(stored_agg, rebuilt)
    stored: TrustScore | None = None
    if stored_agg is not None:
        wanted = _wanted(stored_agg, params)
        facts = _candidates(session, subject=subject, wanted=wanted, params=params)
        if _candidates_match(facts, wanted):
            cands = [_scored(f) for f in facts]
            stored = score_from_aggregate(agg=stored_agg, params=params, now=now, prior_mean=prior, candidates=cands)
        else:
            diffs.append("candidates")
            stored = score_from_aggregate(agg=stored_agg, params=params, now=now, prior_mean=prior)
        diffs += compare_scores(stored=stored, exact=exact)
    check = SubjectCheck(did=subject, reviews=len(reviews), differences=tuple(dict.fromkeys(diffs)), stored=stored,
                         recomputed=exact)  # fmt: skip
    return check, rebuilt


def _write(session: Session, *, key: str, agg: SubjectAggregate, now: int) -> None:
    save(session, subject_normalized=key, state=aggregate_to_state(agg), review_count=agg.live_count(), now=now)


def recompute(*, rt: ScoreContext, did: str | None, params: ScoringParams = DEFAULT_PARAMS) -> RecomputeReport:
    """Rebuild aggregates from the reviews table — one subject (``did``) or all (``None``) — and the global row,
    after checking each stored aggregate against the exact recompute (:func:`compare_scores`). One transaction
    that holds the global row's lock, so review writes wait until it commits. O(reviews of the subject(s)).

    Raises:
        MalformedInput: the reviews table breaks the one-live-review-per-reviewer rule for a subject.
    """
    now = int(rt.clock())
    checks: list[SubjectCheck] = []
    with session_scope(rt.engine) as session:
        ensure_aggregate_row(session, key=GLOBAL_KEY, now=now)
        global_row = load_for_update(session, subject_normalized=GLOBAL_KEY)
        stored_global = _read_aggregate(global_row.state if global_row else None, params)
        prior = global_prior_mean(agg=stored_global, params=params) if stored_global else params.prior_mean_fallback
        if did is not None:
            subject = normalize_did(did)
            reviews = [_scored(f) for f in subject_reviews(session, subject_normalized=subject)]
            check, rebuilt = _check_subject(session, subject=subject, reviews=reviews, prior=prior, now=now,
                                            params=params)  # fmt: skip
            checks.append(check)
            if reviews:
                _write(session, key=subject, agg=rebuilt, now=now)
            else:
                delete_aggregates(session, keys=[subject])
            session.flush()
            new_global = _merge_all(session, params=params)
            subjects = 1
        else:
            new_global = empty_aggregate(params=params)
            stale = {s.key for s in iter_aggregate_states(session, exclude=(GLOBAL_KEY,))}
            subjects = 0
            for group in iter_reviews_by_subject(session):
                subject = group[0].subject_normalized
                check, rebuilt = _check_subject(session, subject=subject, reviews=[_scored(f) for f in group],
                                                prior=prior, now=now, params=params)  # fmt: skip
                if not check.agrees:
                    checks.append(check)
                _write(session, key=subject, agg=rebuilt, now=now)
                new_global = aggregate_merge(aggregates=[new_global, rebuilt], params=params)
                stale.discard(subject)
                subjects += 1
            session.flush()
            delete_aggregates(session, keys=sorted(stale))  # subjects without reviews (none, unless data was lost)
        global_diffs = tuple(_aggregate_differences(stored_global, new_global))
        _write(session, key=GLOBAL_KEY, agg=new_global, now=now)
    disagreements = sum(1 for c in checks if not c.agrees)
    return RecomputeReport(
        subjects=subjects,
        disagreements=disagreements,
        checks=tuple(checks),
        global_differences=global_diffs,
        prior_mean_before=prior,
        prior_mean_after=global_prior_mean(agg=new_global, params=params),
    )


def _merge_all(session: Session, *, params: ScoringParams) -> SubjectAggregate:
    aggs: Iterable[SubjectAggregate] = (
        aggregate_from_state(s.state, params=params) for s in iter_aggregate_states(session, exclude=(GLOBAL_KEY,))
    )
    return aggregate_merge(aggregates=aggs, params=params)
