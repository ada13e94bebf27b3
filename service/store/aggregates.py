"""Per-subject score aggregates as JSON state (the shape is the scoring package's; the store only keeps it)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from service.store.tables import SubjectAggregateRow


def load_for_update(session: Session, *, subject_normalized: str) -> SubjectAggregateRow | None:
    """The row, locked for the rest of the transaction on PostgreSQL (SQLite serializes writers anyway)."""
    stmt = (
        select(SubjectAggregateRow)
        .where(SubjectAggregateRow.subject_normalized == subject_normalized)
        .with_for_update()
    )
    return session.exec(stmt).first()


def save(session: Session, *, subject_normalized: str, state: dict[str, Any], review_count: int, now: int) -> None:
    row = load_for_update(session, subject_normalized=subject_normalized)
    if row is None:
        row = SubjectAggregateRow(subject_normalized=subject_normalized, state=state, review_count=review_count,
                                  updated_at=now)  # fmt: skip
    else:
        row.state, row.review_count, row.updated_at = state, review_count, now
    session.add(row)

