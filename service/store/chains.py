"""Chain identities (``chains``) and which rows refer to which chain. Plain queries; the rules are in
``service.workflows.chain_identity``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, func, insert, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from service.store.tables import (
    ChainRejectRow,
    ChainRow,
    IndexedBlockRow,
    IndexerProgressRow,
    OutboxRow,
    OutcomeHistoryRow,
    ProofRow,
    ReceiptClaimRow,
    ReverifyAttemptRow,
    ReviewRow,
)

CLAIMING_OUTBOX_STATES = ("submitted", "confirmed")


def ensure_chain(session: Session, *, chain_id: int, genesis_hash: str, eas_address: str, now: int) -> int:
    """The id of this identity's row, inserted when new. Insert-or-ignore: processes starting together on a fresh
    database all record the same identity."""
    values = {"chain_id": chain_id, "genesis_hash": genesis_hash, "eas_address": eas_address, "first_seen_at": now}
    keys = ["chain_id", "genesis_hash", "eas_address"]
    table = ChainRow.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(pg_insert(table).values(**values).on_conflict_do_nothing(index_elements=keys))
    else:
        session.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing(index_elements=keys))
    stmt = select(ChainRow.id).where(
        ChainRow.chain_id == chain_id, ChainRow.genesis_hash == genesis_hash, ChainRow.eas_address == eas_address
    )
    found = session.exec(stmt).first()
    assert found is not None
    return int(found)


def chain_rows(session: Session, *, ids: Sequence[int]) -> list[ChainRow]:
    return list(session.exec(select(ChainRow).where(col(ChainRow.id).in_(list(ids))))) if ids else []


def referenced_chains(session: Session) -> dict[int, int]:
    """chain ref → how many reviews (with a UID), outbox items (submitted/confirmed) and checkpoints refer to it."""
    counts: dict[int, int] = {}
    queries = (
        select(ReviewRow.chain_ref, func.count())
        .where(col(ReviewRow.chain_ref).is_not(None), col(ReviewRow.attestation_uid).is_not(None))
        .group_by(col(ReviewRow.chain_ref)),
        select(OutboxRow.chain_ref, func.count())
        .where(col(OutboxRow.chain_ref).is_not(None), col(OutboxRow.state).in_(CLAIMING_OUTBOX_STATES))
        .group_by(col(OutboxRow.chain_ref)),
        select(IndexerProgressRow.chain_ref, func.count())
        .where(col(IndexerProgressRow.chain_ref).is_not(None))
        .group_by(col(IndexerProgressRow.chain_ref)),
    )
    for stmt in queries:
        for ref, n in session.execute(stmt):
            counts[int(ref)] = counts.get(int(ref), 0) + int(n)
    return counts


def unlabelled_uids(session: Session, *, limit: int) -> list[str]:
    """UIDs of reviews written before chain identities were recorded (chain_ref NULL)."""
    stmt = (
        select(ReviewRow.attestation_uid)
        .where(col(ReviewRow.chain_ref).is_(None), col(ReviewRow.attestation_uid).is_not(None))
        .order_by(col(ReviewRow.created_at).desc())
        .limit(limit)
    )
    return [str(u) for u in session.exec(stmt)]


def unlabelled_count(session: Session) -> int:
    reviews = session.exec(
        select(func.count())
        .select_from(ReviewRow)
        .where(col(ReviewRow.chain_ref).is_(None), col(ReviewRow.attestation_uid).is_not(None))
    ).one()
    checkpoints = session.exec(
        select(func.count()).select_from(IndexerProgressRow).where(col(IndexerProgressRow.chain_ref).is_(None))
    ).one()
    return int(reviews) + int(checkpoints)


def label_unlabelled(session: Session, *, chain_ref: int) -> None:
    """Claim every row without a chain identity for ``chain_ref`` (their UIDs were found on it)."""
    session.execute(update(ReviewRow).where(col(ReviewRow.chain_ref).is_(None)).values(chain_ref=chain_ref))
    session.execute(update(OutboxRow).where(col(OutboxRow.chain_ref).is_(None)).values(chain_ref=chain_ref))
    session.execute(
        update(IndexerProgressRow).where(col(IndexerProgressRow.chain_ref).is_(None)).values(chain_ref=chain_ref)
    )


def reviews_elsewhere(session: Session, *, chain_ref: int) -> list[ReviewRow]:
    """Reviews claiming an attestation on another chain (or on none recorded), oldest first."""
    stmt = (
        select(ReviewRow)
        .where(
            col(ReviewRow.attestation_uid).is_not(None),
            or_(col(ReviewRow.chain_ref).is_(None), col(ReviewRow.chain_ref) != chain_ref),
        )
        .order_by(col(ReviewRow.created_at), col(ReviewRow.id))
    )
    return list(session.exec(stmt))


def outbox_elsewhere(session: Session, *, chain_ref: int) -> list[OutboxRow]:
    """Outbox items submitted or confirmed on another chain, oldest first."""
    stmt = (
        select(OutboxRow)
        .where(
            col(OutboxRow.state).in_(CLAIMING_OUTBOX_STATES),
            or_(col(OutboxRow.chain_ref).is_(None), col(OutboxRow.chain_ref) != chain_ref),
        )
        .order_by(col(OutboxRow.id))
    )
    return list(session.exec(stmt))


def forget_checkpoints_elsewhere(session: Session, *, chain_ref: int) -> int:
    """Drop sync checkpoints (and their block hashes) kept for other chains. Returns how many checkpoints."""
    rows = list(
        session.exec(
            select(IndexerProgressRow).where(
                or_(col(IndexerProgressRow.chain_ref).is_(None), col(IndexerProgressRow.chain_ref) != chain_ref)
            )
        )
    )
    for row in rows:
        session.execute(delete(IndexedBlockRow).where(col(IndexedBlockRow.name) == row.name))
        session.delete(row)
    return len(rows)


# ---- indexer block hashes (reorg detection) --------------------------------------------------------------------
KEEP_BLOCKS = 1024  # hashes older than this below the checkpoint are dropped (no reorg is that deep)


def progress_row(session: Session, *, name: str) -> IndexerProgressRow | None:
    return session.get(IndexerProgressRow, name)


def recent_blocks(session: Session, *, name: str) -> list[tuple[int, str]]:
    """(block number, hash) the indexer ``name`` has recorded, highest first."""
    stmt = (
        select(IndexedBlockRow.block_number, IndexedBlockRow.block_hash)
        .where(IndexedBlockRow.name == name)
        .order_by(col(IndexedBlockRow.block_number).desc())
    )
    return [(int(n), str(h)) for n, h in session.exec(stmt)]


_BLOCKS = IndexedBlockRow.__table__  # type: ignore[attr-defined]
_IN_BATCH = 1000
_REHASH = (
    update(_BLOCKS)
    .where(_BLOCKS.c.name == bindparam("n"), _BLOCKS.c.block_number == bindparam("b"))
    .values(block_hash=bindparam("h"))
)


def remember_blocks(
    session: Session,
    *,
    name: str,
    hashes: dict[int, str],
    last_block: int,
    last_hash: str | None,
    chain_ref: int | None,
) -> None:
    """Record the hashes of blocks read (those that held attestations, and the checkpoint block), tag the checkpoint
    with its hash and chain, and drop hashes older than ``KEEP_BLOCKS``. In the caller's transaction, after the
    checkpoint was advanced."""
    if last_hash:
        hashes = {**hashes, last_block: last_hash}
    numbers = sorted(hashes)
    known: dict[int, str] = {}
    for k in range(0, len(numbers), _IN_BATCH):  # one read per batch, not one per block
        part = numbers[k : k + _IN_BATCH]
        rows = session.execute(
            select(_BLOCKS.c.block_number, _BLOCKS.c.block_hash)
            .where(_BLOCKS.c.name == name, _BLOCKS.c.block_number.in_(part))
        )  # fmt: skip
        known.update((int(n), str(h)) for n, h in rows)
    new = [{"name": name, "block_number": n, "block_hash": hashes[n]} for n in numbers if n not in known]
    changed = [{"n": name, "b": n, "h": hashes[n]} for n in numbers if n in known and known[n] != hashes[n]]
    if new:
        session.execute(insert(_BLOCKS), new)
    if changed:
        session.execute(_REHASH, changed)
    progress = session.get(IndexerProgressRow, name)
    if progress is not None and progress.last_block == last_block:
        progress.block_hash, progress.chain_ref = last_hash, chain_ref
        session.add(progress)
    session.execute(
        delete(IndexedBlockRow).where(
            col(IndexedBlockRow.name) == name, col(IndexedBlockRow.block_number) < last_block - KEEP_BLOCKS
        )
    )


def rewind_checkpoint(session: Session, *, name: str, block: int, block_hash: str | None, now: int) -> None:
    """Move the checkpoint back to ``block`` (a reorg) and forget the hashes above it."""
    progress = session.get(IndexerProgressRow, name, with_for_update=True)
    if progress is not None:
        progress.last_block, progress.block_hash, progress.updated_at = block, block_hash, now
        session.add(progress)
    session.execute(
        delete(IndexedBlockRow).where(col(IndexedBlockRow.name) == name, col(IndexedBlockRow.block_number) > block)
    )


def indexed_after(session: Session, *, block: int) -> list[ReviewRow]:
    """Reviews stored by sync from blocks above ``block``, newest first (the order to undo them in)."""
    stmt = (
        select(ReviewRow)
        .where(ReviewRow.source == "chain", col(ReviewRow.attestation_block) > block)
        .order_by(col(ReviewRow.attestation_block).desc(), col(ReviewRow.review_time).desc(), col(ReviewRow.id).desc())
        .with_for_update()
    )
    return list(session.exec(stmt))


def reviews_superseded_by(session: Session, *, review_id: str) -> list[ReviewRow]:
    """Reviews marked superseded by ``review_id`` (itself excluded), newest first."""
    stmt = (
        select(ReviewRow)
        .where(ReviewRow.superseded_by == review_id, ReviewRow.id != review_id)
        .order_by(col(ReviewRow.review_time).desc(), col(ReviewRow.created_at).desc(), col(ReviewRow.id).desc())
        .with_for_update()
    )
    return list(session.exec(stmt))


def delete_review_rows(session: Session, *, review_id: str) -> None:
    """Delete a review with its proofs, their history and re-check attempts, and its receipt claims."""
    proof_ids = [p for p in session.exec(select(ProofRow.id).where(ProofRow.review_id == review_id)) if p is not None]
    if proof_ids:
        session.execute(delete(OutcomeHistoryRow).where(col(OutcomeHistoryRow.proof_id).in_(proof_ids)))
        session.execute(delete(ReverifyAttemptRow).where(col(ReverifyAttemptRow.proof_id).in_(proof_ids)))
    session.execute(delete(ProofRow).where(col(ProofRow.review_id) == review_id))
    session.execute(delete(ReceiptClaimRow).where(col(ReceiptClaimRow.review_id) == review_id))
    session.execute(delete(ReviewRow).where(col(ReviewRow.id) == review_id))


def backing_receipt_keys(session: Session, *, review_id: str) -> list[str]:
    """Replay keys of the receipts that back a review (bound, with a replay key)."""
    stmt = select(ProofRow.replay_key).where(
        ProofRow.review_id == review_id, col(ProofRow.bound).is_(True), col(ProofRow.replay_key).is_not(None)
    )
    return [str(k) for k in session.exec(stmt)]


def delete_rejects_after(session: Session, *, block: int) -> int:
    result = session.execute(delete(ChainRejectRow).where(col(ChainRejectRow.block_number) > block))
    return int(getattr(result, "rowcount", 0) or 0)


def attesters_with_unlinked(session: Session, *, attesters: Sequence[str]) -> set[str]:
    """Which of these attesters have an API review without an attestation UID yet (sync may have to link one)."""
    if not attesters:
        return set()
    stmt = (
        select(ReviewRow.attester)
        .where(
            ReviewRow.source == "api",
            col(ReviewRow.attestation_uid).is_(None),
            col(ReviewRow.attester).in_(sorted(set(attesters))),
        )
        .distinct()
    )
    return {str(a) for a in session.exec(stmt)}
