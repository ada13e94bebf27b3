"""Audit and rebuild of the score aggregates: recompute every (or one) subject's aggregate from the reviews table,
check the stored one against the exact recompute, and write the rebuilt rows (``omatrust score --recompute``).
:class:`AggregateRebuilder` runs the same rebuild in the background when a read or write met a stale aggregate."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from service.dids import normalize_did
from service.errors import StaleAggregate
from service.scoring import (
    ScoredReview,
    ScoringParams,
    SubjectAggregate,
    TrustScore,
    aggregate_merge,
    aggregate_reviews,
    global_prior_mean,
    score_from_aggregate,
    score_reviews,
)
from service.store.aggregates import load_for_update, save
from service.store.engine import session_scope
from service.store.scoring_queries import (
    aggregate_states,
    delete_aggregates,
    ensure_aggregate_row,
    iter_aggregate_states,
    review_subjects,
    subject_reviews,
)
from service.workflows.aggregates import (
    GLOBAL_KEY,
    aggregate_from_state,
    aggregate_to_state,
    aggregates_rebuilt,
    fold_global,
)
from service.workflows.reputation import ScoreContext, scored_fact, stored_candidates

log = logging.getLogger(__name__)
# Relative/absolute tolerance when comparing the aggregate path with the exact recompute (float rounding only).
_REL_TOL = 1e-9
_ABS_TOL = 1e-9


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
    except (StaleAggregate, ValueError, KeyError, TypeError):
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
        cands = stored_candidates(session, subject=subject, agg=stored_agg, params=params)
        if cands is None:
            diffs.append("candidates")
        stored = score_from_aggregate(agg=stored_agg, params=params, now=now, prior_mean=prior, candidates=cands)
        diffs += compare_scores(stored=stored, exact=exact)
    check = SubjectCheck(did=subject, reviews=len(reviews), differences=tuple(dict.fromkeys(diffs)), stored=stored,
                         recomputed=exact)  # fmt: skip
    return check, rebuilt


def _write(session: Session, *, key: str, agg: SubjectAggregate, now: int) -> None:
    save(session, subject_normalized=key, state=aggregate_to_state(agg), review_count=agg.live_count(), now=now)


def recompute(*, rt: ScoreContext, did: str | None, params: ScoringParams | None = None) -> RecomputeReport:
    """Rebuild aggregates from the reviews table — one subject (``did``) or all (``None``) — after checking each
    stored aggregate against the exact recompute (:func:`compare_scores`). One transaction; each subject's
    aggregate row is locked before its reviews are read, so a concurrent write of that subject either is seen or
    applies its change on top of the rebuilt row. O(reviews of the subject(s)). The former global row
    (``aggregates.GLOBAL_KEY``) is deleted: the global aggregate is folded from the subjects' when read.

    Raises:
        MalformedInput: the reviews table breaks the one-live-review-per-reviewer rule for a subject.
    """
    params = params or rt.params
    now = int(rt.clock())
    checks: list[SubjectCheck] = []
    with session_scope(rt.engine) as session:
        # A write first: on SQLite the rebuild holds the database's write lock from here on.
        delete_aggregates(session, keys=[GLOBAL_KEY])
        stored_global = _read_global(session, params)
        prior = global_prior_mean(agg=stored_global, params=params) if stored_global else params.prior_mean_fallback
        if did is not None:
            subjects = [normalize_did(did)]
            stale: set[str] = set()
        else:
            subjects = review_subjects(session)
            stale = {s.key for s in iter_aggregate_states(session, exclude=(GLOBAL_KEY,))} - set(subjects)
        for subject in subjects:
            ensure_aggregate_row(session, key=subject, now=now)
            load_for_update(session, subject_normalized=subject)  # locked before its reviews are read
            reviews = [scored_fact(f) for f in subject_reviews(session, subject_normalized=subject)]
            check, rebuilt = _check_subject(session, subject=subject, reviews=reviews, prior=prior, now=now,
                                            params=params)  # fmt: skip
            if did is not None or not check.agrees:
                checks.append(check)
            if reviews:
                _write(session, key=subject, agg=rebuilt, now=now)
            else:
                stale.add(subject)
        session.flush()
        delete_aggregates(session, keys=sorted(stale))  # subjects without reviews (none, unless data was lost)
        session.flush()
        new_global = _merge_all(session, params=params)
        aggregates_rebuilt(session)
        global_diffs = tuple(_aggregate_differences(stored_global, new_global))
    disagreements = sum(1 for c in checks if not c.agrees)
    return RecomputeReport(
        subjects=len(subjects),
        disagreements=disagreements,
        checks=tuple(checks),
        global_differences=global_diffs,
        prior_mean_before=prior,
        prior_mean_after=global_prior_mean(agg=new_global, params=params),
    )


def _read_global(session: Session, params: ScoringParams) -> SubjectAggregate | None:
    """The global aggregate as the stored subject rows make it (None: one is in other units)."""
    try:
        return fold_global(session, params=params)
    except (StaleAggregate, ValueError, KeyError, TypeError):
        return None


def _merge_all(session: Session, *, params: ScoringParams) -> SubjectAggregate:
    aggs: Iterable[SubjectAggregate] = (
        aggregate_from_state(s.state, params=params) for s in iter_aggregate_states(session, exclude=(GLOBAL_KEY,))
    )
    return aggregate_merge(aggregates=aggs, params=params)


def any_stale(*, rt: ScoreContext, params: ScoringParams | None = None) -> bool:
    """Whether any stored subject aggregate row is in other scoring units (O(subjects))."""
    params = params or rt.params
    with session_scope(rt.engine) as session:
        for row in iter_aggregate_states(session, exclude=(GLOBAL_KEY,)):
            try:
                aggregate_from_state(row.state, params=params)
            except StaleAggregate:
                return True
    return False


class AggregateRebuilder:
    """Rebuilds stale aggregates in one background thread: :meth:`trigger` (the runtime's ``aggregates_stale``
    hook) is cheap and may be called by every request that met a stale row; one rebuild runs at a time, and a
    trigger during a rebuild makes it check once more afterwards. The rebuild is :func:`recompute` of every
    subject (one transaction; a review write waits only if its subject's row is being rebuilt)."""

    def __init__(self, *, rt: ScoreContext) -> None:
        self.rt = rt
        self._lock = threading.Lock()
        self._wanted = False
        self._thread: threading.Thread | None = None
        self.rebuilt = threading.Event()  # set after each rebuild that left no stale row (tests wait on it)
        self.runs = 0

    def trigger(self) -> None:
        with self._lock:
            self._wanted = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="omatrust-aggregates", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._wanted:
                    self._thread = None
                    return
                self._wanted = False
            try:
                if any_stale(rt=self.rt):
                    report = recompute(rt=self.rt, did=None)
                    self.runs += 1
                    log.warning("rebuilt stale score aggregates of %d subjects", report.subjects)
                self.rebuilt.set()
            except Exception:  # a failed rebuild is retried on the next trigger; reads stay exact meanwhile
                log.exception("rebuilding score aggregates failed")

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

