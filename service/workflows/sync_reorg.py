"""Reorgs under ``omatrust sync``: detect them from stored block hashes and undo what orphaned blocks brought.

Each committed block range records, with its checkpoint, the hash of the checkpoint block and of every block that
held an attestation (``indexer_blocks``; free: logs carry their block hash). Before reading on, sync checks that the
checkpoint block is still canonical (one ``eth_getBlockByNumber``). If not, it walks the recorded hashes down to the
highest block the chain still has — the fork point — and, in one transaction, undoes every review, supersession,
aggregate contribution, receipt claim and reject it stored from blocks above it, then moves the checkpoint back to
the fork point; the canonical blocks are then indexed as usual. Undoing a review is the exact inverse of storing it:
its contribution leaves the aggregates, a review it superseded is live again (with its receipt claims), reviews that
pointed at it point at whatever superseded it, and its rows are deleted (each undo is logged).

Our own API reviews are the publisher's business (it watches the blocks of what it confirmed, see
service.chain.publisher), so sync leaves them alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import Session

from service.chain.eas_relayer import EasClient
from service.errors import ReceiptAlreadyClaimed
from service.store.chains import (
    backing_receipt_keys,
    delete_rejects_after,
    delete_review_rows,
    indexed_after,
    reviews_superseded_by,
    rewind_checkpoint,
)
from service.store.engine import session_scope
from service.store.reviews import claim_receipts
from service.store.tables import ReviewRow
from service.workflows.aggregates import scored
from service.workflows.fork_walk import find_fork
from service.workflows.runtime import Runtime
from service.workflows.withdraw import apply_scored

log = logging.getLogger("omatrust.sync")


@dataclass(frozen=True, slots=True)
class ReorgOutcome:
    checkpoint: int | None
    fork: int | None = None  # the highest block still canonical, when a reorg was found
    undone: int = 0  # reviews removed
    rejects_undone: int = 0


def checkpoint_after_reorgs(*, rt: Runtime, client: EasClient, name: str) -> ReorgOutcome:
    """The checkpoint to resume from, after undoing a reorg below it if there was one.

    Raises:
        ChainUnavailable: RPC failure (nothing changed).
    """
    resume = find_fork(engine=rt.engine, name=name, chain=client)
    if resume.fork is None:
        return ReorgOutcome(checkpoint=resume.checkpoint)
    checkpoint, fork, fork_hash = resume.fork.checkpoint, resume.fork.block, resume.fork.block_hash
    now = int(rt.clock())
    with session_scope(rt.engine) as session:
        undone = 0
        for row in indexed_after(session, block=fork):
            undo_indexed_review(session, rt=rt, row=row, now=now)
            undone += 1
        rejects = delete_rejects_after(session, block=fork)
        rewind_checkpoint(session, name=name, block=fork, block_hash=fork_hash, now=now)
    log.warning("sync: reorg below block %d: the chain forked after block %d; undid %d reviews and %d rejects "
                "from orphaned blocks, re-indexing from %d", checkpoint, fork, undone, rejects, fork + 1)  # fmt: skip
    return ReorgOutcome(checkpoint=fork, fork=fork, undone=undone, rejects_undone=rejects)


def undo_indexed_review(session: Session, *, rt: Runtime, row: ReviewRow, now: int) -> None:
    """The exact inverse of storing ``row`` (see the module docstring), in the caller's transaction."""
    pointing = reviews_superseded_by(session, review_id=row.id)
    was_live = row.superseded_by is None
    removes = [scored(row)]
    adds = []
    revived: ReviewRow | None = None
    log.info("sync: undoing review %s (attestation %s, block %s) from an orphaned block", row.id,
             row.attestation_uid, row.attestation_block)  # fmt: skip
    delete_review_rows(session, review_id=row.id)
    session.flush()
    if was_live and pointing:
        revived = pointing[0]
        revived.superseded_by = None
        session.add(revived)
        for other in pointing[1:]:
            other.superseded_by = revived.id
            session.add(other)
        removes.append(scored(revived, superseded=True))
        adds.append(scored(revived, superseded=False))
    elif pointing:
        for other in pointing:
            other.superseded_by = row.superseded_by
            session.add(other)
    session.flush()
    if revived is not None:
        keys = backing_receipt_keys(session, review_id=revived.id)
        try:
            claim_receipts(session, replay_keys=keys, review=revived, superseding=None)
        except ReceiptAlreadyClaimed as exc:  # another live review took it meanwhile: it keeps it
            log.info("sync: revived review %s does not get its receipt back: %s", revived.id, exc.detail)
    apply_scored(session, rt=rt, subject=row.subject_normalized, removes=removes, adds=adds, now=now)
