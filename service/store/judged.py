"""The one write path for a judged review: submit (API), sync (chain) and the row writes of re-verification.

Storing a review is: serialize on its attester → (API) idempotency and EAS nonce checks → find the live review of
(attester, normalized subject) → learn which of its receipts already back another live review → let the caller
finish judging with those facts → supersede, insert the review, claim its receipts, add its proof rows, change
the score aggregates, enqueue it for publishing. All in the caller's transaction (callers add the evidence
snapshots in it afterwards).

Serialization: every writer of an attester's reviews first takes that attester's write lock
(:func:`lock_attesters`) — PostgreSQL: a transaction-scoped advisory lock on a hash of the address; SQLite: the
database's single write lock (``BEGIN IMMEDIATE``). Lock order is always attester locks (sorted) → the global
aggregate row → subject aggregate rows, so writers cannot deadlock. The partial unique index ``ux_reviews_live``
(one live review per attester and subject) backs the rule in the database whatever path writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import text
from sqlmodel import Session

from service.domain import Reason
from service.errors import ChainRejected
from service.store.batch import live_or_newer
from service.store.outbox import find_by_content_key, next_inflight_nonce
from service.store.reviews import claim_receipts, receipt_holder
from service.store.tables import OutboxRow, ProofRow, ReviewRow

_LOCK_NAMESPACE = b"omatrust:attester:"


def _lock_key(attester: str) -> int:
    """A signed 64-bit key for ``pg_advisory_xact_lock`` (stable across processes and versions)."""
    digest = hashlib.sha256(_LOCK_NAMESPACE + attester.lower().encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_attesters(session: Session, *, attesters: Iterable[str]) -> None:
    """Take the write lock of each attester for the rest of the transaction. Call before any other write or
    locking read of the transaction (see the lock order in the module docstring).

    PostgreSQL: one advisory lock per attester, in sorted order. SQLite: the database write lock (``BEGIN
    IMMEDIATE``), which serializes every writer — the session must not have started a transaction yet.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        for key in sorted({_lock_key(a) for a in attesters}):
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    elif dialect == "sqlite":
        conn = session.connection()
        if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class AggregateChange(Protocol):
    """Applies a review write to the score aggregates in the same transaction (the workflows' scoring rules)."""

    def __call__(self, session: Session, *, added: ReviewRow | None, removed: ReviewRow | None, now: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Publication:
    """The signed EAS delegated request that publishes an API review (an outbox row)."""

    content_key: str
    recipient: str
    data_hex: str
    deadline: int
    nonce: int
    signature: str
    chain_nonce: int  # the attester's EAS nonce as read from the chain before the transaction


@dataclass(frozen=True, slots=True)
class Placement:
    """What the store knows about a review about to be written: given to the caller's judge."""

    previous: ReviewRow | None  # the live review of (attester, subject), locked
    arrives_superseded: bool  # ``previous`` is newer (chain data arriving late): the new row is stored superseded
    replayed: Mapping[str, str]  # replay key → the other live review it backs, among the candidate receipts


@dataclass
class JudgedRows:
    """The rows of a judged review (``review.superseded_by`` is set here, not by the caller)."""

    review: ReviewRow
    proofs: list[ProofRow]
    receipt_keys: Sequence[str]  # receipts this review claims (not the replayed ones)


@dataclass(frozen=True, slots=True)
class Stored:
    review_id: str
    existing: bool = False  # the same signed request had already been accepted: nothing was written
    superseded: str | None = None  # the review this one superseded
    arrives_superseded: bool = False


def store_judged_review(
    session: Session,
    *,
    attester: str,
    subject_normalized: str,
    review_time: int,
    candidate_receipts: Sequence[str],
    judge: Callable[[Placement], JudgedRows],
    aggregates: AggregateChange,
    now: int,
    publication: Publication | None = None,
    latest: bool = False,
    locked: bool = False,
) -> Stored:
    """Store one judged review in the caller's transaction (see the module docstring). ``judge`` finishes the
    verdict with the store's facts and returns the rows; it may raise to refuse the review (nothing is written).
    ``latest``: the review supersedes the live one whatever their times (API: the order of acceptance is the
    order of the attester's reviews). Otherwise the later ``review_time`` is live (chain data may arrive late).
    ``locked``: the caller already holds the attester's lock (a sync chunk locks all its attesters up front).

    Raises:
        ChainRejected(DELEGATION_NONCE): ``publication.nonce`` is not the attester's next nonce (the chain's, or
            one past the attester's requests still in the outbox).
        ReceiptAlreadyClaimed: a receipt the review claims backs another live review (a judge that unbinds
            replayed receipts never gets this).
        whatever ``judge`` raises.
    """
    if not locked:
        lock_attesters(session, attesters=[attester])
    if publication is not None:
        existing = find_by_content_key(session, content_key=publication.content_key)
        if existing is not None:
            return Stored(review_id=existing.review_id, existing=True)
        inflight = next_inflight_nonce(session, attester=attester)
        expected = max(publication.chain_nonce, inflight or 0)
        if publication.nonce != expected:
            raise ChainRejected(Reason.DELEGATION_NONCE, f"nonce {publication.nonce}, expected {expected}")
    previous = live_or_newer(session, attester=attester, subject_normalized=subject_normalized)
    # One live review per (attester, subject): the latest by review time (ties: the one written last).
    arrives_superseded = not latest and previous is not None and previous.review_time > review_time
    superseding = previous if previous is not None and not arrives_superseded else None
    replayed = {
        key: holder
        for key in candidate_receipts
        if (holder := receipt_holder(session, replay_key=key)) is not None
        and (superseding is None or holder != superseding.id)
    }
    rows = judge(Placement(previous=previous, arrives_superseded=arrives_superseded, replayed=replayed))
    row = rows.review
    if arrives_superseded and previous is not None:
        row.superseded_by = previous.id
    if superseding is not None:
        # Superseded before the insert: the unique index admits one live review per attester and subject.
        superseding.superseded_by = row.id
        session.add(superseding)
        session.flush()
    session.add(row)
    session.flush()
    if not arrives_superseded:
        claim_receipts(session, replay_keys=rows.receipt_keys, review=row,
                       superseding=superseding.id if superseding else None)  # fmt: skip
    for proof in rows.proofs:
        session.add(proof)
    if publication is not None:
        session.add(
            OutboxRow(
                content_key=publication.content_key, review_id=row.id, attester=attester,
                recipient=publication.recipient, data_hex=publication.data_hex, deadline=publication.deadline,
                nonce=str(publication.nonce), signature=publication.signature, created_at=now, updated_at=now,
            )
        )  # fmt: skip
    aggregates(session, added=row, removed=superseding, now=now)
    return Stored(
        review_id=row.id,
        superseded=superseding.id if superseding else None,
        arrives_superseded=arrives_superseded,
    )
