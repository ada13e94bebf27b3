"""Keep per-subject score aggregates current as reviews are written (O(1) per write, O(1) per read).

A write changes only the aggregate rows of its own subjects (one row lock each): writers about different subjects
never wait on each other. The global aggregate behind the prior mean μ₀ — the merge of every subject's aggregate —
is not stored by writers: :func:`global_aggregate` folds the subject rows when it is read and keeps the result per
process for at most ``GLOBAL_FOLD_MAX_AGE`` seconds, shifted at once by this process's own commits. See
docs/scoring.md "Global prior" for the staleness bound.

``GLOBAL_KEY`` names the row that held the global aggregate when writers kept it up to date (before this fold); it
is never a subject, is skipped by every read, and ``omatrust score --recompute`` deletes it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from service.errors import StaleAggregate
from service.scoring import (
    DEFAULT_PARAMS,
    Evidence,
    ScoredReview,
    ScoringParams,
    SubjectAggregate,
    aggregate_add,
    aggregate_remove,
    empty_aggregate,
    widen_layout,
)
from service.scoring.aggregate import N_BUCKETS
from service.store.aggregates import lock_state, write_state
from service.store.batch import Rider
from service.store.engine import session_scope
from service.store.judged import AggregateChange
from service.store.scoring_queries import iter_aggregate_states
from service.store.tables import ReviewRow
from service.workflows.runtime import Runtime

log = logging.getLogger(__name__)
# Key of the former global aggregate row: not a DID (DIDs start with "did:"), so it never collides with a subject.
GLOBAL_KEY = "*"
# How long a process may answer with a global aggregate folded earlier (other processes' writes; its own commits
# make it fold again at once).
GLOBAL_FOLD_MAX_AGE = 5.0


def _ignore() -> None:
    return None


def scored(row: ReviewRow, *, superseded: bool | None = None) -> ScoredReview:
    """A stored review as the scoring core sees it."""
    return ScoredReview(
        review_id=row.id,
        reviewer=row.attester,
        rating=row.rating_value,
        time=row.review_time,
        evidence=Evidence(row.evidence),
        superseded=row.superseded_by is not None if superseded is None else superseded,
        attestation_uid=row.attestation_uid,
    )


def aggregate_to_state(agg: SubjectAggregate) -> dict[str, Any]:
    return {
        "halfLifeSeconds": agg.half_life_seconds,
        "decayEpoch": agg.decay_epoch,
        "counts": list(agg.counts),
        "decaySums": list(agg.decay_sums),
        "superseded": agg.superseded,
        "lastReviewAt": agg.last_review_at,
    }


def aggregate_from_state(state: dict[str, Any], *, params: ScoringParams = DEFAULT_PARAMS) -> SubjectAggregate:
    """Raises StaleAggregate when the stored state is not in ``params``' units (half-life/epoch changed)."""
    if not state:
        return empty_aggregate(params=params)
    agg = SubjectAggregate(
        half_life_seconds=int(state["halfLifeSeconds"]),
        decay_epoch=int(state["decayEpoch"]),
        # widen_layout: aggregates stored before evidence classes were added are exact in today's layout.
        counts=widen_layout([int(c) for c in state["counts"]], fill=0),
        decay_sums=widen_layout([float(s) for s in state["decaySums"]], fill=0.0),
        superseded=int(state["superseded"]),
        last_review_at=state.get("lastReviewAt"),
    )
    if (agg.half_life_seconds, agg.decay_epoch) != (params.half_life_seconds, params.decay_epoch):
        raise StaleAggregate(
            f"stored under half-life {agg.half_life_seconds}s/epoch {agg.decay_epoch}, params {params.version} "
            f"use {params.half_life_seconds}s/{params.decay_epoch}"
        )
    return agg


def review_change(rt: Runtime) -> AggregateChange:
    """The aggregate update of the store's write path under the runtime's scoring parameters: a stale aggregate
    is left as it is (the reviews table stays the truth) and reported to ``rt.aggregates_stale`` for a rebuild."""
    return functools.partial(apply_review_change, params=rt.params, on_stale=rt.aggregates_stale)


def apply_review_change(
    session: Session,
    *,
    added: ReviewRow | None,
    removed: ReviewRow | None,
    now: int,
    params: ScoringParams = DEFAULT_PARAMS,
    on_stale: Callable[[], None] = _ignore,
    riders: list[Rider] | None = None,
    locked: Mapping[str, dict[str, Any]] | None = None,
) -> None:
    """Add ``added`` (live) and retire ``removed`` (now superseded) in the subject's aggregate, in the caller's
    transaction. Both must be about the same subject. A stale row (other scoring units) is not changed:
    ``on_stale`` is called and the rebuild it triggers recomputes the row from the reviews, this one included.
    ``riders``: the row is read and locked now, its write appended there (see ``write_state``). ``locked``: the
    stored states of subjects the transaction has locked already (then the row is not locked again)."""
    subject = (added or removed).subject_normalized  # type: ignore[union-attr]
    state = locked[subject] if locked is not None and subject in locked else lock_state(
        session, subject_normalized=subject, now=now)  # fmt: skip
    try:
        before = aggregate_from_state(state, params=params)
    except StaleAggregate:
        on_stale()
        return
    agg = _changed(before, added=added, removed=removed)
    write_state(session, subject_normalized=subject, state=aggregate_to_state(agg), review_count=agg.live_count(),
                now=now, riders=riders)  # fmt: skip
    aggregates_changed(session, before=before, after=agg, params=params)


def _changed(agg: SubjectAggregate, *, added: ReviewRow | None, removed: ReviewRow | None) -> SubjectAggregate:
    if removed is not None:
        agg = aggregate_remove(agg=agg, review=scored(removed, superseded=False))
        agg = aggregate_add(agg=agg, review=scored(removed, superseded=True))
    if added is not None:
        agg = aggregate_add(agg=agg, review=scored(added))
    return agg


# -- the global aggregate, folded from the subjects' ------------------------------------------------------------


@dataclass
class _Fold:
    agg: SubjectAggregate
    params_version: str
    folded_at: float  # time.monotonic() when its read began


class _GlobalFolds:
    """Per process and engine: the last fold of the global aggregate. This process's own commits shift it by their
    deltas at once (:func:`aggregates_changed`); other processes' writes enter with the next fold. One thread
    refolds at a time; meanwhile the others answer from the previous fold."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folds: weakref.WeakKeyDictionary[Engine, _Fold] = weakref.WeakKeyDictionary()
        self._folding: weakref.WeakSet[Engine] = weakref.WeakSet()

    def claim(
        self, engine: Engine, *, params: ScoringParams, max_age: float, wait: bool
    ) -> tuple[SubjectAggregate | None, bool]:
        """(the fold to answer with, whether the caller must refold — then :meth:`keep` or :meth:`release`). A fold
        older than ``max_age`` still answers while one refold runs, unless ``wait`` (then the caller folds)."""
        with self._lock:
            fold = self._folds.get(engine)
            usable = fold is not None and fold.params_version == params.version
            if fold is not None and usable and time.monotonic() - fold.folded_at <= max_age:
                return fold.agg, False
            if fold is not None and usable and not wait:
                refold = engine not in self._folding
                self._folding.add(engine)
                return fold.agg, refold  # answered from the previous fold; at most one refold runs
            self._folding.add(engine)
            return None, True

    def keep(self, engine: Engine, *, agg: SubjectAggregate, params: ScoringParams, started: float) -> None:
        with self._lock:
            self._folds[engine] = _Fold(agg=agg, params_version=params.version, folded_at=started)
            self._folding.discard(engine)

    def drop(self, engine: Engine) -> None:
        with self._lock:
            self._folds.pop(engine, None)

    def release(self, engine: Engine) -> None:
        with self._lock:
            self._folding.discard(engine)

    def shift(self, engine: Engine, *, deltas: list[tuple[str, SubjectAggregate | None, SubjectAggregate]]) -> None:
        """Apply committed (params version, before, after) changes of subject aggregates to the cached fold. A
        ``before`` holding another process's write the fold has not seen yet can make a bucket negative: then the
        fold is dropped and the next read folds again (this runs after a commit: it must never raise)."""
        with self._lock:
            fold = self._folds.get(engine)
            if fold is None:
                return
            agg = fold.agg
            try:
                for version, before, after in deltas:
                    if version != fold.params_version:
                        continue
                    agg = _shifted(agg, before=before, after=after)
            except ValueError:
                self._folds.pop(engine, None)
                return
            fold.agg = agg


_FOLDS = _GlobalFolds()
_CHANGED = "omatrust_aggregate_deltas"  # session.info: (params version, before, after) of this transaction
_REBUILT = "omatrust_aggregates_rebuilt"  # session.info: this transaction rewrote aggregates wholesale


def _shifted(agg: SubjectAggregate, *, before: SubjectAggregate | None, after: SubjectAggregate) -> SubjectAggregate:
    """``agg`` with one subject's aggregate replaced: − before + after, bucket by bucket (cache upkeep only; the
    next fold recomputes it from the rows)."""
    counts = [c - (before.counts[i] if before else 0) + after.counts[i] for i, c in enumerate(agg.counts)]
    sums = [max(0.0, d - (before.decay_sums[i] if before else 0.0) + after.decay_sums[i]) if counts[i] else 0.0
            for i, d in enumerate(agg.decay_sums)]  # fmt: skip
    last = max((t for t in (agg.last_review_at, after.last_review_at) if t is not None), default=None)
    return dataclasses.replace(agg, counts=tuple(counts), decay_sums=tuple(sums), last_review_at=last,
                               superseded=agg.superseded - (before.superseded if before else 0) + after.superseded)


def aggregates_changed(
    session: Session, *, before: SubjectAggregate | None, after: SubjectAggregate, params: ScoringParams
) -> None:
    """Note that the session's transaction replaced a subject's aggregate ``before`` (None: it was empty or in
    other units) with ``after``: once it commits, this process's cached global fold is shifted by the difference."""
    session.info.setdefault(_CHANGED, []).append((params.version, before, after))


def aggregates_rebuilt(session: Session) -> None:
    """Note that the session's transaction rewrote aggregates wholesale: once it commits, this process folds again."""
    session.info[_REBUILT] = True


@event.listens_for(OrmSession, "after_commit")
def _committed(session: OrmSession) -> None:
    deltas = session.info.pop(_CHANGED, None)
    rebuilt = session.info.pop(_REBUILT, False)
    engine = session.get_bind()
    if isinstance(engine, Engine) and rebuilt:
        _FOLDS.drop(engine)
    elif isinstance(engine, Engine) and deltas:
        _FOLDS.shift(engine, deltas=deltas)


@event.listens_for(OrmSession, "after_soft_rollback")
def _rolled_back(session: OrmSession, _previous: Any) -> None:
    if not session.in_transaction():
        session.info.pop(_CHANGED, None)
        session.info.pop(_REBUILT, None)


def fold_global(session: Session, *, params: ScoringParams = DEFAULT_PARAMS) -> SubjectAggregate:
    """The merge of every subject's stored aggregate (O(subjects), ≈ 30 µs each): what the global aggregate is by
    definition (``aggregate_merge`` of them, summed straight from the stored states).

    Raises:
        StaleAggregate: a subject's row is stored under other scoring units.
    """
    counts = [0] * N_BUCKETS
    sums = [0.0] * N_BUCKETS
    superseded = 0
    last: int | None = None
    units = (params.half_life_seconds, params.decay_epoch)
    for row in iter_aggregate_states(session, exclude=(GLOBAL_KEY,)):
        state = row.state
        if not state:
            continue
        if (int(state["halfLifeSeconds"]), int(state["decayEpoch"])) != units:
            aggregate_from_state(state, params=params)  # raises StaleAggregate with the details
        counts = [a + int(b) for a, b in zip(counts, widen_layout(state["counts"], fill=0), strict=True)]
        sums = [a + float(b) for a, b in zip(sums, widen_layout(state["decaySums"], fill=0.0), strict=True)]
        superseded += int(state["superseded"])
        at = state.get("lastReviewAt")
        if at is not None:
            last = at if last is None else max(last, at)
    return SubjectAggregate(half_life_seconds=params.half_life_seconds, decay_epoch=params.decay_epoch,
                            counts=tuple(counts), decay_sums=tuple(sums), superseded=superseded,
                            last_review_at=last)  # fmt: skip


def global_aggregate(
    *, engine: Engine, params: ScoringParams = DEFAULT_PARAMS, max_age: float = GLOBAL_FOLD_MAX_AGE,
    wait: bool = False,
) -> SubjectAggregate:
    """The global aggregate (merge of every subject's): this process's fold, shifted by its commits since. A fold
    that began more than ``max_age`` seconds ago is refolded in a background thread while it still answers (so no
    request waits for an O(subjects) fold after the first); with ``wait`` — or without any fold yet — the caller
    folds and gets the new fold.

    Raises:
        StaleAggregate: a subject's row is stored under other scoring units (only when this call folds).
    """
    cached, refold = _FOLDS.claim(engine, params=params, max_age=max_age, wait=wait)
    if cached is not None:
        if refold:
            threading.Thread(target=_refold, args=(engine, params), name="omatrust-global-fold", daemon=True).start()
        return cached
    return _fold_and_keep(engine, params)


def _fold_and_keep(engine: Engine, params: ScoringParams) -> SubjectAggregate:
    started = time.monotonic()
    try:
        with session_scope(engine) as session:
            agg = fold_global(session, params=params)
    except BaseException:
        _FOLDS.release(engine)
        raise
    _FOLDS.keep(engine, agg=agg, params=params, started=started)
    return agg


def _refold(engine: Engine, params: ScoringParams) -> None:
    try:
        _fold_and_keep(engine, params)
    except Exception:  # a stale row or a failed read: the next read folds in its own thread and sees the error
        log.warning("folding the global aggregate failed", exc_info=True)
        _FOLDS.drop(engine)
