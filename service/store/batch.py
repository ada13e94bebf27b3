"""Batch queries for re-verification and chain sync: keyset-paginated column reads, bulk writes, run checkpoints,
the indexer checkpoint and rejected chain attestations.

Reads select plain columns (tuples, no ORM objects): a re-verification run reads every review, and building ORM
objects would cost more than verifying them. Functions take a session; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Text, cast, exists, func, insert, select, tuple_, update
from sqlmodel import Session, col

from service.store.tables import (
    ChainRejectRow,
    DidSnapshotRow,
    IndexerProgressRow,
    OutcomeHistoryRow,
    ProofRow,
    ReverifyAttemptRow,
    ReverifyRunRow,
    ReviewRow,
)


class ReviewKey(NamedTuple):
    """Position of a review in the batch order (the ``ix_reviews_subject_time`` index)."""

    subject_normalized: str
    review_time: int
    review_id: str


class BatchReview(NamedTuple):
    id: str
    subject: str
    subject_normalized: str
    attester: str
    review_time: int
    rating_value: int
    proofs_json: str  # the stored JSON text of the proofs list
    verified_purchase: bool
    evidence: str
    superseded: bool
    attestation_uid: str | None
    problem: str | None

    @property
    def key(self) -> ReviewKey:
        return ReviewKey(self.subject_normalized, self.review_time, self.id)


class BatchProof(NamedTuple):
    id: int
    review_id: str
    position: int
    status: str
    reason: str | None
    kind: str | None
    format: str | None
    signature_valid: bool
    signer: str | None
    tier: str | None
    replay_key: str | None
    bound: bool
    issued_at: int | None
    checked_at: int
    evidence_hash: str | None


class Snapshot(NamedTuple):
    snapshot_hash: str
    did: str
    kind: str
    raw: str
    first_seen_at: int


@dataclass(frozen=True, slots=True)
class Selection:
    """Which reviews a batch run covers (all filters optional; ``subjects`` restricts to a partition's subjects)."""

    subject_normalized: str | None = None
    since: int | None = None
    status: str | None = None


# Core table columns: pages are read without the ORM (no per-row entity bookkeeping).
_REVIEWS = ReviewRow.__table__  # type: ignore[attr-defined]
_PROOFS = ProofRow.__table__  # type: ignore[attr-defined]
_R = _REVIEWS.c
_P = _PROOFS.c

_REVIEW_COLUMNS = (
    _R.id,
    _R.subject,
    _R.subject_normalized,
    _R.attester,
    _R.review_time,
    _R.rating_value,
    cast(_R.proofs_json, Text),  # the JSON text: decoded by the worker that judges it, not here
    _R.verified_purchase,
    _R.evidence,
    _R.superseded_by,
    _R.attestation_uid,
    _R.problem,
)

_PROOF_COLUMNS = (
    _P.id,
    _P.review_id,
    _P.position,
    _P.status,
    _P.reason,
    _P.kind,
    _P.format,
    _P.signature_valid,
    _P.signer,
    _P.tier,
    _P.replay_key,
    _P.bound,
    _P.issued_at,
    _P.checked_at,
    _P.evidence_hash,
)


def _filtered(stmt: Any, selection: Selection) -> Any:
    if selection.subject_normalized is not None:
        stmt = stmt.where(col(ReviewRow.subject_normalized) == selection.subject_normalized)
    if selection.since is not None:
        stmt = stmt.where(col(ReviewRow.review_time) >= selection.since)
    if selection.status is not None:
        other = _PROOFS.alias("status_proofs")  # its own alias: the outer query may join proofs too
        stmt = stmt.where(exists().where(other.c.review_id == _R.id, other.c.status == selection.status))
    return stmt


def subject_counts(session: Session, *, selection: Selection) -> list[tuple[str, int]]:
    """(subject_normalized, number of selected reviews) for every subject with selected reviews, sorted."""
    stmt = _filtered(
        select(col(ReviewRow.subject_normalized), func.count()).group_by(col(ReviewRow.subject_normalized)),
        selection,
    ).order_by(col(ReviewRow.subject_normalized))
    return [(str(s), int(n)) for s, n in session.execute(stmt)]


def count_reviews(session: Session, *, selection: Selection) -> int:
    return int(session.execute(_filtered(select(func.count()).select_from(ReviewRow), selection)).scalar_one())


def review_page(
    session: Session,
    *,
    selection: Selection,
    after: ReviewKey | None,
    limit: int,
    subjects: Sequence[str] | None = None,
) -> list[BatchReview]:
    """The next ``limit`` selected reviews after ``after`` in (subject_normalized, review_time, id) order.

    ``subjects`` (a sorted slice of a partition's subjects) restricts the page to those subjects.
    """
    stmt = _filtered(select(*_REVIEW_COLUMNS), selection)
    if subjects is not None:
        stmt = stmt.where(_R.subject_normalized.in_(list(subjects)))
    if after is not None:
        stmt = stmt.where(tuple_(_R.subject_normalized, _R.review_time, _R.id) > tuple_(*after))
    stmt = stmt.order_by(_R.subject_normalized, _R.review_time, _R.id).limit(limit)
    out: list[BatchReview] = []
    for r in session.connection().execute(stmt).all():
        review = BatchReview(
            id=r[0], subject=r[1], subject_normalized=r[2], attester=r[3], review_time=int(r[4]),
            rating_value=int(r[5]), proofs_json=r[6] or "[]", verified_purchase=bool(r[7]), evidence=r[8],
            superseded=r[9] is not None, attestation_uid=r[10], problem=r[11],
        )  # fmt: skip
        out.append(review)
    return out


def proofs_of(
    session: Session,
    *,
    selection: Selection,
    first: ReviewKey,
    last: ReviewKey,
    subjects: Sequence[str] | None = None,
) -> dict[str, list[BatchProof]]:
    """Proof rows of the selected reviews whose keys lie in [first, last] — i.e. of one page from
    ``review_page`` — in one range query (no IN list of ids), grouped by review id (order within a review not
    guaranteed: callers go by ``position``)."""
    joined = select(*_PROOF_COLUMNS).select_from(_PROOFS.join(_REVIEWS, _P.review_id == _R.id))
    stmt = _filtered(joined, selection)
    key = tuple_(_R.subject_normalized, _R.review_time, _R.id)
    stmt = stmt.where(key >= tuple_(*first), key <= tuple_(*last))
    if subjects is not None:
        stmt = stmt.where(_R.subject_normalized.in_(list(subjects)))
    out: dict[str, list[BatchProof]] = {}
    for r in session.connection().execute(stmt).all():
        out.setdefault(r[1], []).append(BatchProof._make(r))
    return out


def snapshots_by_hash(session: Session, *, hashes: Iterable[str]) -> dict[str, Snapshot]:
    wanted = sorted(set(hashes))
    if not wanted:
        return {}
    stmt = select(
        col(DidSnapshotRow.snapshot_hash),
        col(DidSnapshotRow.did),
        col(DidSnapshotRow.kind),
        col(DidSnapshotRow.raw),
        col(DidSnapshotRow.first_seen_at),
    ).where(col(DidSnapshotRow.snapshot_hash).in_(wanted))
    return {r[0]: Snapshot(r[0], r[1], r[2], r[3], int(r[4])) for r in session.execute(stmt)}


def lock_reviews(session: Session, *, review_ids: Sequence[str]) -> dict[str, ReviewRow]:
    """The current rows of these reviews, locked for the rest of the transaction (PostgreSQL; SQLite writers are
    serialized anyway)."""
    if not review_ids:
        return {}
    stmt = select(ReviewRow).where(col(ReviewRow.id).in_(list(review_ids))).with_for_update()
    return {row.id: row for row in session.execute(stmt).scalars()}


def update_proofs(session: Session, *, changes: Sequence[Mapping[str, Any]]) -> None:
    """Bulk UPDATE of proof rows; each mapping has ``id`` plus the columns to set (all mappings the same keys)."""
    if changes:
        session.execute(update(ProofRow), list(changes))


def update_reviews(session: Session, *, changes: Sequence[Mapping[str, Any]]) -> None:
    """Bulk UPDATE of review rows by primary key ``id``."""
    if changes:
        session.execute(update(ReviewRow), list(changes))


def insert_history(session: Session, *, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.execute(insert(OutcomeHistoryRow), list(rows))


def insert_attempts(session: Session, *, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.execute(insert(ReverifyAttemptRow), list(rows))


def history_of_run(session: Session, *, run_id: str) -> list[OutcomeHistoryRow]:
    stmt = select(OutcomeHistoryRow).where(col(OutcomeHistoryRow.run_id) == run_id).order_by(col(OutcomeHistoryRow.id))
    return list(session.execute(stmt).scalars())


# ---- re-verification runs -------------------------------------------------------------------------------------


def create_run(session: Session, *, run_id: str, selection: Mapping[str, Any], now: int) -> ReverifyRunRow:
    row = ReverifyRunRow(run_id=run_id, selection=dict(selection), started_at=now, updated_at=now)
    session.add(row)
    return row


def get_run(session: Session, *, run_id: str) -> ReverifyRunRow | None:
    return session.get(ReverifyRunRow, run_id)


def latest_unfinished_run(session: Session, *, selection: Mapping[str, Any]) -> ReverifyRunRow | None:
    """The most recently started run still ``running`` whose selection equals ``selection``."""
    stmt = (
        select(ReverifyRunRow)
        .where(col(ReverifyRunRow.state) == "running")
        .order_by(col(ReverifyRunRow.started_at).desc(), col(ReverifyRunRow.run_id).desc())
    )
    rows: list[ReverifyRunRow] = list(session.execute(stmt).scalars())
    return next((row for row in rows if dict(row.selection) == dict(selection)), None)


def save_run_progress(
    session: Session,
    *,
    run_id: str,
    last: ReviewKey | None,
    reviews_checked: int,
    tallies: Mapping[str, Any],
    now: int,
    finished: bool = False,
) -> None:
    """Move the run's checkpoint. Called first in a chunk's transaction, it also takes SQLite's write lock before
    the chunk's rows are re-read."""
    values: dict[str, Any] = {"reviews_checked": reviews_checked, "tallies": dict(tallies), "updated_at": now}
    if last is not None:
        values.update(last_subject=last.subject_normalized, last_time=last.review_time, last_review_id=last.review_id)
    if finished:
        values.update(state="done", finished_at=now)
    session.execute(update(ReverifyRunRow).where(col(ReverifyRunRow.run_id) == run_id).values(**values))


def run_checkpoint(row: ReverifyRunRow) -> ReviewKey | None:
    if row.last_review_id is None or row.last_subject is None or row.last_time is None:
        return None
    return ReviewKey(row.last_subject, int(row.last_time), row.last_review_id)


# ---- chain sync ---------------------------------------------------------------------------------------------------


def advance_indexer_checkpoint(session: Session, *, name: str, block: int, now: int) -> None:
    """Set the checkpoint to ``block`` unless it is already further (a re-scan from an older block never moves it
    back)."""
    row = session.get(IndexerProgressRow, name, with_for_update=True)
    if row is None:
        session.add(IndexerProgressRow(name=name, last_block=block, updated_at=now))
    elif block > row.last_block:
        row.last_block, row.updated_at = block, now
        session.add(row)


def known_uids(session: Session, *, uids: Sequence[str]) -> set[str]:
    """Which of these attestation UIDs are already stored (as reviews or as rejects)."""
    if not uids:
        return set()
    wanted = [u.lower() for u in uids]
    uid = col(ReviewRow.attestation_uid)
    found = set(session.execute(select(uid).where(uid.in_(wanted))).scalars())
    reject = col(ChainRejectRow.uid)
    found |= set(session.execute(select(reject).where(reject.in_(wanted))).scalars())
    return {str(u) for u in found}


def unlinked_own_review(session: Session, *, attester: str, subject_normalized: str, data_hex: str) -> ReviewRow | None:
    """A review we accepted through the API with exactly this attestation data and no UID yet (published, but the
    publisher has not recorded the UID): the attestation found on chain is that review."""
    stmt = select(ReviewRow).where(
        col(ReviewRow.attester) == attester,
        col(ReviewRow.subject_normalized) == subject_normalized,
        col(ReviewRow.attestation_uid).is_(None),
        col(ReviewRow.source) == "api",
    )
    rows: list[ReviewRow] = list(session.execute(stmt).scalars())
    return next((row for row in rows if row.data_hex.lower() == data_hex.lower()), None)


def add_chain_reject(session: Session, *, row: ChainRejectRow) -> None:
    session.add(row)


def live_or_newer(session: Session, *, attester: str, subject_normalized: str) -> ReviewRow | None:
    """The live review of (attester, subject), locked (PostgreSQL) for the supersession decision."""
    stmt = (
        select(ReviewRow)
        .where(
            col(ReviewRow.attester) == attester,
            col(ReviewRow.subject_normalized) == subject_normalized,
            col(ReviewRow.superseded_by).is_(None),
        )
        .with_for_update()
    )
    found: ReviewRow | None = session.execute(stmt).scalars().first()
    return found

