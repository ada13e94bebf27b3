"""Withdrawing a review whose attestation cannot land (publish failed for good, or its chain was given up by
``omatrust chain adopt``): it is **not live** any more — it counts in no score, its receipts back nothing, and it
supersedes nothing (the reviewer's previous review, if any, is live again).

A withdrawn review is marked ``superseded_by = its own id``: every "live" query (``superseded_by IS NULL``), the
receipt-claim rule (a claim held by a review that is not live is transferable) and the aggregates then treat it as
retired without a new column to teach them. The reason is the outbox item's ``last_error``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from service.errors import StaleAggregate
from service.scoring import ScoredReview, SubjectAggregate, aggregate_add, aggregate_remove
from service.store.aggregates import lock_many, save_many
from service.store.batch import Rider
from service.store.tables import ReviewRow
from service.workflows.aggregates import aggregate_from_state, aggregate_to_state, aggregates_changed, scored
from service.workflows.runtime import Runtime

log = logging.getLogger(__name__)


def is_withdrawn(row: ReviewRow) -> bool:
    return row.superseded_by == row.id


def withdraw_review(session: Session, *, rt: Runtime, review_id: str, now: int) -> bool:
    """Withdraw ``review_id`` in the caller's transaction (see the module docstring). Returns False when it is
    unknown or already withdrawn. Its attestation UID is cleared (the chain does not have it)."""
    row = session.get(ReviewRow, review_id, with_for_update=True)
    if row is None or is_withdrawn(row):
        return False
    was_live = row.superseded_by is None
    superseded = list(
        session.exec(
            select(ReviewRow)
            .where(ReviewRow.superseded_by == review_id, ReviewRow.id != review_id)
            .order_by(col(ReviewRow.review_time).desc(), col(ReviewRow.created_at).desc(), col(ReviewRow.id).desc())
            .with_for_update()
        )
    )
    before = scored(row, superseded=False)  # as the aggregates count it now (attestation fields cleared below)
    row.superseded_by, row.attestation_uid, row.chain_ref, row.attestation_block = row.id, None, None, None
    session.add(row)
    session.flush()  # out of the live set before the previous review re-enters it (one live review per pair)
    restored = superseded[0] if was_live and superseded else None
    if restored is not None:
        restored.superseded_by = None
        session.add(restored)
        for other in superseded[1:]:
            other.superseded_by = restored.id
            session.add(other)
        session.flush()
    if was_live:
        _move(session, rt=rt, retired=before, subject=row.subject_normalized, revived=restored, now=now)
    log.info("review %s withdrawn (its attestation cannot land)%s", review_id,
             f"; {restored.id} is live again" if restored else "")  # fmt: skip
    return True


def _move(session: Session, *, rt: Runtime, retired: ScoredReview, subject: str, revived: ReviewRow | None,
          now: int) -> None:  # fmt: skip
    """Aggregates: ``retired`` goes from live to superseded; ``revived`` from superseded to live — applied when the
    transaction commits, with the other withdrawals of that transaction (see :func:`_apply_withdrawals`)."""
    removes = [retired]
    adds = [dataclasses.replace(retired, superseded=True)]
    if revived is not None:
        removes.append(scored(revived, superseded=True))
        adds.append(scored(revived, superseded=False))
    pending: _Pending | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = _Pending(rt=rt, now=now)
    pending.ops.setdefault(subject, []).extend([(False, r) for r in removes] + [(True, r) for r in adds])
    pending.now = max(pending.now, now)


_PENDING = "omatrust:withdrawn-aggregates"


@dataclasses.dataclass
class _Pending:
    rt: Runtime
    now: int
    ops: dict[str, list[tuple[bool, ScoredReview]]] = dataclasses.field(default_factory=dict)


@event.listens_for(OrmSession, "before_commit")
def _apply_withdrawals(session: OrmSession) -> None:
    """The aggregate changes of a transaction's withdrawals, applied as it commits: after every review row it locks.
    A transaction that withdraws one review and then locks another (the publisher's claim: a failed item, then a
    confirmed or failed one; ``chain adopt``) would otherwise hold a subject's aggregate row while it waits for a
    review row, which a writer holding that review row may be waiting to lock that aggregate row after — a
    deadlock (the write path's lock order is review rows, then aggregate rows)."""
    if session.in_nested_transaction():
        return  # a savepoint: the outer commit applies them
    pending: _Pending | None = session.info.pop(_PENDING, None)
    if pending is not None and pending.ops:
        apply_many(cast(Session, session), rt=pending.rt, ops=pending.ops, now=pending.now)


@event.listens_for(OrmSession, "after_soft_rollback")
def _drop_withdrawals(session: OrmSession, _previous: Any) -> None:
    if not session.in_transaction():
        session.info.pop(_PENDING, None)


def apply_scored(
    session: Session,
    *,
    rt: Runtime,
    subject: str,
    removes: Sequence[ScoredReview],
    adds: Sequence[ScoredReview],
    now: int,
) -> None:
    """Take ``removes`` out of and put ``adds`` into the subject's aggregate, in the caller's transaction. See
    :func:`apply_many`."""
    ops = [(False, r) for r in removes] + [(True, r) for r in adds]
    apply_many(session, rt=rt, ops={subject: ops}, now=now)


def apply_many(
    session: Session, *, rt: Runtime, ops: dict[str, list[tuple[bool, ScoredReview]]], now: int,
    riders: list[Rider] | None = None, locked: Mapping[str, dict[str, Any]] | None = None,
) -> None:  # fmt: skip
    """Apply (add?, review) operations, in order, to each subject's aggregate, in the caller's transaction: the
    subjects are locked in sorted order (the write path's lock order); one read and one write for all (the
    global aggregate is folded from these rows when read: ``aggregates.global_aggregate``). A stale or inconsistent
    aggregate is left as it is and reported to ``rt.aggregates_stale`` (rebuilt from the reviews). ``riders``: the
    rows are locked and read now, their write may be appended there (``store.aggregates.save_many``). ``locked``:
    the stored states of subjects the transaction has locked already; when it holds every subject of ``ops`` the
    rows are not locked again."""

    def changed(agg: SubjectAggregate, items: Sequence[tuple[bool, ScoredReview]]) -> SubjectAggregate:
        for add, review in items:
            agg = aggregate_add(agg=agg, review=review) if add else aggregate_remove(agg=agg, review=review)
        return agg

    stale = False
    if locked is not None and ops.keys() <= locked.keys():
        states = locked
    else:
        states = lock_many(session, subjects=list(ops), now=now)
    saved: list[tuple[str, dict[str, Any], int]] = []
    for subject in sorted(ops):
        try:
            before = aggregate_from_state(states.get(subject, {}), params=rt.params)
            agg = changed(before, ops[subject])
        except (StaleAggregate, ValueError) as exc:
            log.warning("aggregate of %s not updated: %s", subject, exc)
            stale = True
            continue
        saved.append((subject, aggregate_to_state(agg), agg.live_count()))
        aggregates_changed(session, before=before, after=agg, params=rt.params)
    save_many(session, rows=saved, now=now, riders=riders)
    if stale:
        rt.aggregates_stale()
