"""The publish outbox in SQL: plain row operations. The publisher's contract (durable on return, oldest first,
terminal states sticky) is implemented on top of these in ``service.workflows.outbox``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from service.store.tables import OutboxRow, ReviewRow

TERMINAL = ("confirmed", "failed")


def find_by_content_key(session: Session, *, content_key: str) -> OutboxRow | None:
    return session.exec(select(OutboxRow).where(OutboxRow.content_key == content_key)).first()


def outboxes_for(session: Session, *, review_ids: list[str]) -> dict[str, OutboxRow]:
    """The outbox row of each review that has one (one query)."""
    if not review_ids:
        return {}
    stmt = select(OutboxRow).where(col(OutboxRow.review_id).in_(review_ids))
    return {row.review_id: row for row in session.exec(stmt)}


def count_by_state(session: Session, *, state: str) -> int:
    return int(session.exec(select(func.count()).select_from(OutboxRow).where(OutboxRow.state == state)).one())


def _of_digits(digits: Sequence[str] | None) -> list[Any]:
    """Filter on the attester's last hex digit (a relayer key's share of attesters; None → every attester)."""
    return [] if digits is None else [func.substr(OutboxRow.attester, 42, 1).in_(list(digits))]


def pending_due(
    session: Session, *, limit: int, now: int, digits: Sequence[str] | None = None, skip_locked: bool = False
) -> list[OutboxRow]:
    """Pending rows due by ``now``, oldest first. ``skip_locked`` (PostgreSQL): lock them ``FOR UPDATE SKIP
    LOCKED`` until the session ends — rows another transaction holds are passed over, never waited for."""
    stmt = (
        select(OutboxRow)
        .where(OutboxRow.state == "pending", col(OutboxRow.next_attempt_at) <= now, *_of_digits(digits))
        .order_by(col(OutboxRow.id))
        .limit(limit)
    )
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.exec(stmt))


def in_state(session: Session, *, state: str, digits: Sequence[str] | None = None) -> list[OutboxRow]:
    stmt = select(OutboxRow).where(OutboxRow.state == state, *_of_digits(digits)).order_by(col(OutboxRow.id))
    return list(session.exec(stmt))


def rows_by_id(session: Session, *, ids: Sequence[int]) -> list[OutboxRow]:
    return list(session.exec(select(OutboxRow).where(col(OutboxRow.id).in_(list(ids))).with_for_update()))


def set_review_uid(session: Session, *, review_id: str, uid: str) -> None:
    review = session.get(ReviewRow, review_id)
    if review is not None and review.attestation_uid != uid:
        review.attestation_uid = uid
        session.add(review)


def next_inflight_nonce(session: Session, *, attester: str) -> int | None:
    """One past the highest EAS nonce of the attester's requests still in flight (pending/submitted), if any."""
    nonces = session.exec(
        select(OutboxRow.nonce).where(
            OutboxRow.attester == attester, col(OutboxRow.state).in_(("pending", "submitted"))
        )
    ).all()
    return max(int(n) for n in nonces) + 1 if nonces else None


def next_own_nonce(session: Session, *, attester: str) -> int | None:
    """One past the highest EAS nonce of the attester's requests this service accepted and has not failed
    (pending, submitted or confirmed): the next nonce as far as our own publishing knows."""
    nonces = session.exec(
        select(OutboxRow.nonce).where(
            OutboxRow.attester == attester, col(OutboxRow.state).in_(("pending", "submitted", "confirmed"))
        )
    ).all()
    return max(int(n) for n in nonces) + 1 if nonces else None
