"""The row writes of one re-verification chunk, in the chunk's transaction: changed proof outcomes and their
history, the attempts that could not be completed, new evidence snapshots, and changed reviews (evidence class,
verified purchase) with their score aggregates. Review changes go through the write path's lock order
(``service.store.judged``): the attesters' locks, then the review rows, then the aggregates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import Session

from service.store.batch import insert_attempts, insert_history, lock_reviews, update_proofs, update_reviews
from service.store.judged import lock_attesters
from service.store.snapshots import remember_snapshot
from service.workflows.reclassify import reclassify


def write_chunk_rows(
    session: Session,
    *,
    run_id: str,
    proof_changes: Sequence[Any],
    attempts: Sequence[Any],
    review_changes: Sequence[Any],
    attesters: Mapping[str, str],
    snapshots: Sequence[tuple[str, str, str, str]],
    now: int,
) -> list[str]:
    """Write one chunk's results (``reverify_judge`` change records; ``attesters``: review id → attester;
    ``snapshots``: (hash, did, kind, raw) first seen in this run). Returns the subjects whose stored aggregate
    was inconsistent or stale (left for ``omatrust score --recompute`` / the background rebuild)."""
    update_proofs(session, changes=[{"id": c.proof_id, **c.values} for c in proof_changes])
    insert_history(
        session,
        rows=[
            {"proof_id": c.proof_id, "review_id": c.review_id, "before_status": c.before_status,
             "after_status": c.values["status"], "before_reason": c.before_reason,
             "after_reason": c.values["reason"], "run_id": run_id, "changed_at": now}
            for c in proof_changes
            if (c.before_status, c.before_reason) != (c.values["status"], c.values["reason"])
        ],
    )  # fmt: skip
    insert_attempts(
        session,
        rows=[
            {"run_id": run_id, "proof_id": a.proof_id, "review_id": a.review_id,
             "kept_status": a.kept_status, "reason": a.reason, "detail": a.detail, "attempted_at": now}
            for a in attempts
        ],
    )  # fmt: skip
    for digest, did, kind, raw in snapshots:
        remember_snapshot(session, snapshot_hash=digest, did=did, kind=kind, raw=raw, now=now)
    if not review_changes:
        return []
    lock_attesters(session, attesters=sorted({attesters[c.review_id] for c in review_changes}))
    rows = lock_reviews(session, review_ids=[c.review_id for c in review_changes])
    present = [c for c in review_changes if c.review_id in rows]
    inconsistent = reclassify(session, changes=[(rows[c.review_id], c.after[1]) for c in present], now=now)
    update_reviews(
        session,
        changes=[{"id": c.review_id, "verified_purchase": c.after[0], "evidence": c.after[1]} for c in present],
    )
    return inconsistent
