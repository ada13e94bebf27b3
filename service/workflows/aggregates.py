"""Keep per-subject score aggregates current as reviews are written (O(1) per write, O(1) per read).

Besides one row per subject, a reserved row ``GLOBAL_KEY`` holds the merge of every subject's aggregate (the
global prior mean μ₀ reads it in O(1)). Both are changed by the same deltas in the same transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

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
from service.store.aggregates import load_for_update, save
from service.store.judged import AggregateChange
from service.store.scoring_queries import ensure_aggregate_row
from service.store.tables import ReviewRow
from service.workflows.runtime import Runtime

# Key of the global aggregate row: not a DID (DIDs start with "did:"), so it never collides with a subject.
GLOBAL_KEY = "*"


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
) -> None:
    """Add ``added`` (live) and retire ``removed`` (now superseded) in the subject's aggregate, in the caller's
    transaction. Both must be about the same subject. A stale row (other scoring units) is not changed:
    ``on_stale`` is called and the rebuild it triggers recomputes the row from the reviews, this one included."""
    subject = (added or removed).subject_normalized  # type: ignore[union-attr]
    global_agg = load_global_for_update(session, now=now, params=params)
    ensure_aggregate_row(session, key=subject, now=now)
    row = load_for_update(session, subject_normalized=subject)
    try:
        agg: SubjectAggregate | None = aggregate_from_state(row.state if row else {}, params=params)
    except StaleAggregate:
        agg = None
    if agg is not None:
        agg = _changed(agg, added=added, removed=removed)
        save(session, subject_normalized=subject, state=aggregate_to_state(agg), review_count=agg.live_count(),
             now=now)  # fmt: skip
    if global_agg is not None:
        save_global(session, agg=_changed(global_agg, added=added, removed=removed), now=now)
    if agg is None or global_agg is None:
        on_stale()


def load_global_for_update(
    session: Session, *, now: int, params: ScoringParams = DEFAULT_PARAMS
) -> SubjectAggregate | None:
    """Lock the global row for the rest of the transaction and return its aggregate (None: stale, other units).

    Every writer takes this lock BEFORE any subject row's: one lock order, so writers cannot deadlock on the pair.
    The row is created race-free first (INSERT … ON CONFLICT DO NOTHING) so FOR UPDATE always finds it. Whoever
    changes a subject aggregate must apply the same change here and :func:`save_global` it.
    """
    ensure_aggregate_row(session, key=GLOBAL_KEY, now=now)
    row = load_for_update(session, subject_normalized=GLOBAL_KEY)
    try:
        return aggregate_from_state(row.state if row else {}, params=params)
    except StaleAggregate:
        return None


def save_global(session: Session, *, agg: SubjectAggregate, now: int) -> None:
    save(session, subject_normalized=GLOBAL_KEY, state=aggregate_to_state(agg), review_count=agg.live_count(), now=now)


def _changed(agg: SubjectAggregate, *, added: ReviewRow | None, removed: ReviewRow | None) -> SubjectAggregate:
    if removed is not None:
        agg = aggregate_remove(agg=agg, review=scored(removed, superseded=False))
        agg = aggregate_add(agg=agg, review=scored(removed, superseded=True))
    if added is not None:
        agg = aggregate_add(agg=agg, review=scored(added))
    return agg
