"""Keep per-subject score aggregates current as reviews are written (O(1) per write, O(1) per read).

Besides one row per subject, a reserved row ``GLOBAL_KEY`` holds the merge of every subject's aggregate (the
global prior mean μ₀ reads it in O(1)). Both are changed by the same deltas in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from service.scoring import (
    DEFAULT_PARAMS,
    Evidence,
    ScoredReview,
    ScoringParams,
    SubjectAggregate,
    aggregate_add,
    aggregate_remove,
    empty_aggregate,
)
from service.store.aggregates import load_for_update, save
from service.store.scoring_queries import ensure_aggregate_row
from service.store.tables import ReviewRow

# Key of the global aggregate row: not a DID (DIDs start with "did:"), so it never collides with a subject.
GLOBAL_KEY = "*"


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
    """Raises ValueError when the stored state is not in ``params``' units (half-life/epoch changed: recompute)."""
    if not state:
        return empty_aggregate(params=params)
    agg = SubjectAggregate(
        half_life_seconds=int(state["halfLifeSeconds"]),
        decay_epoch=int(state["decayEpoch"]),
        counts=tuple(int(c) for c in state["counts"]),
        decay_sums=tuple(float(s) for s in state["decaySums"]),
        superseded=int(state["superseded"]),
        last_review_at=state.get("lastReviewAt"),
    )
    if (agg.half_life_seconds, agg.decay_epoch) != (params.half_life_seconds, params.decay_epoch):
        raise ValueError("aggregate stored under other scoring units; run `omatrust score --recompute`")
    return agg


def apply_review_change(session: Session, *, added: ReviewRow | None, removed: ReviewRow | None, now: int) -> None:
    """Add ``added`` (live) and retire ``removed`` (now superseded) in the subject's aggregate, in the caller's
    transaction. Both must be about the same subject."""
    subject = (added or removed).subject_normalized  # type: ignore[union-attr]
    global_agg = load_global_for_update(session, now=now)
    ensure_aggregate_row(session, key=subject, now=now)
    row = load_for_update(session, subject_normalized=subject)
    agg = _changed(aggregate_from_state(row.state if row else {}), added=added, removed=removed)
    save(session, subject_normalized=subject, state=aggregate_to_state(agg), review_count=agg.live_count(), now=now)
    save_global(session, agg=_changed(global_agg, added=added, removed=removed), now=now)


def load_global_for_update(session: Session, *, now: int) -> SubjectAggregate:
    """Lock the global row for the rest of the transaction and return its aggregate.

    Every writer takes this lock BEFORE any subject row's: one lock order, so writers cannot deadlock on the pair.
    The row is created race-free first (INSERT … ON CONFLICT DO NOTHING) so FOR UPDATE always finds it. Whoever
    changes a subject aggregate must apply the same change here and :func:`save_global` it.

    Raises:
        ValueError: the stored global aggregate is in other scoring units (``omatrust score --recompute``).
    """
    ensure_aggregate_row(session, key=GLOBAL_KEY, now=now)
    row = load_for_update(session, subject_normalized=GLOBAL_KEY)
    return aggregate_from_state(row.state if row else {})


def save_global(session: Session, *, agg: SubjectAggregate, now: int) -> None:
    save(session, subject_normalized=GLOBAL_KEY, state=aggregate_to_state(agg), review_count=agg.live_count(), now=now)


def _changed(agg: SubjectAggregate, *, added: ReviewRow | None, removed: ReviewRow | None) -> SubjectAggregate:
    if removed is not None:
        agg = aggregate_remove(agg=agg, review=scored(removed, superseded=False))
        agg = aggregate_add(agg=agg, review=scored(removed, superseded=True))
    if added is not None:
        agg = aggregate_add(agg=agg, review=scored(added))
    return agg
