"""Reads (and one upsert) the trust score needs: aggregate rows by key, the few most recent live reviews per
(evidence, rating) bucket, and a subject's full review list for exact recomputes.

Functions take a session; the caller owns the transaction. Bounded reads use LIMIT on index order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import CompoundSelect, Select, and_, bindparam, delete, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from service.store.tables import ReviewRow, SubjectAggregateRow


@dataclass(frozen=True, slots=True)
class ReviewFacts:
    """The columns of a review the score uses."""

    id: str
    subject_normalized: str
    attester: str
    rating_value: int
    review_time: int
    evidence: str
    superseded: bool
    attestation_uid: str | None


@dataclass(frozen=True, slots=True)
class AggregateState:
    key: str
    state: dict[str, Any]
    review_count: int
    updated_at: int


_FACT_COLUMNS = (
    col(ReviewRow.id),
    col(ReviewRow.subject_normalized),
    col(ReviewRow.attester),
    col(ReviewRow.rating_value),
    col(ReviewRow.review_time),
    col(ReviewRow.evidence),
    col(ReviewRow.superseded_by),
    col(ReviewRow.attestation_uid),
)


def _facts(row: Any) -> ReviewFacts:
    return ReviewFacts(
        id=row[0],
        subject_normalized=row[1],
        attester=row[2],
        rating_value=int(row[3]),
        review_time=int(row[4]),
        evidence=row[5],
        superseded=row[6] is not None,
        attestation_uid=row[7],
    )


def begin_snapshot(session: Session) -> None:
    """Make the session's following reads see one snapshot (an aggregate row and the reviews behind it must agree).
    Call first in a fresh session. PostgreSQL: REPEATABLE READ. SQLite: the driver opens no transaction for
    SELECTs, so each would read its own WAL snapshot; an explicit BEGIN makes them share one."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    elif dialect == "sqlite":
        conn = session.connection()
        if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            conn.exec_driver_sql("BEGIN")


@lru_cache(maxsize=1)
def _aggregate_states_stmt() -> Select[Any]:
    t = SubjectAggregateRow.__table__  # type: ignore[attr-defined]
    return select(t.c.subject_normalized, t.c.state, t.c.review_count, t.c.updated_at).where(
        t.c.subject_normalized.in_(bindparam("keys", expanding=True))
    )


def aggregate_states(session: Session, *, keys: Sequence[str]) -> dict[str, AggregateState]:
    """The stored aggregate rows with these keys (subjects, or reserved keys such as the global row), one query."""
    if not keys:
        return {}
    rows = session.connection().execute(_aggregate_states_stmt(), {"keys": list(keys)})
    return {
        r[0]: AggregateState(key=r[0], state=r[1] or {}, review_count=int(r[2]), updated_at=int(r[3])) for r in rows
    }


def iter_aggregate_states(
    session: Session, *, exclude: Sequence[str] = (), chunk: int = 1000
) -> Iterator[AggregateState]:
    """Every aggregate row except ``exclude``, in key order, read in keyset-paginated chunks (O(rows) in total)."""
    t = SubjectAggregateRow.__table__  # type: ignore[attr-defined]
    after: str | None = None
    while True:
        stmt = select(t.c.subject_normalized, t.c.state, t.c.review_count, t.c.updated_at)
        if after is not None:
            stmt = stmt.where(t.c.subject_normalized > after)
        rows = list(session.execute(stmt.order_by(t.c.subject_normalized).limit(chunk)))
        for r in rows:
            if r[0] not in exclude:
                yield AggregateState(key=r[0], state=r[1] or {}, review_count=int(r[2]), updated_at=int(r[3]))
        if len(rows) < chunk:
            return
        after = rows[-1][0]


def ensure_aggregate_row(session: Session, *, key: str, now: int) -> None:
    """Insert an empty aggregate row for ``key`` unless one exists, without failing when a concurrent transaction
    inserts it first (INSERT … ON CONFLICT DO NOTHING), so a following ``SELECT … FOR UPDATE`` always finds it."""
    values = {"subject_normalized": key, "state": {}, "review_count": 0, "updated_at": now}
    t = SubjectAggregateRow.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(pg_insert(t).values(**values).on_conflict_do_nothing(index_elements=["subject_normalized"]))
    elif dialect == "sqlite":
        session.execute(sqlite_insert(t).values(**values).on_conflict_do_nothing(index_elements=["subject_normalized"]))
    elif session.get(SubjectAggregateRow, key) is None:
        session.add(SubjectAggregateRow(subject_normalized=key, state={}, review_count=0, updated_at=now))
        session.flush()


def ensure_aggregate_rows(session: Session, *, keys: Sequence[str], now: int) -> None:
    """:func:`ensure_aggregate_row` for many keys in one statement per 500 (PostgreSQL and SQLite)."""
    t = SubjectAggregateRow.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    keys = list(keys)
    for k in range(0, len(keys), 500):
        values = [{"subject_normalized": key, "state": {}, "review_count": 0, "updated_at": now}
                  for key in keys[k : k + 500]]  # fmt: skip
        if dialect == "postgresql":
            session.execute(pg_insert(t).values(values).on_conflict_do_nothing(index_elements=["subject_normalized"]))
        elif dialect == "sqlite":
            session.execute(
                sqlite_insert(t).values(values).on_conflict_do_nothing(index_elements=["subject_normalized"])
            )
        else:
            for key in keys[k : k + 500]:
                ensure_aggregate_row(session, key=key, now=now)


def delete_aggregates(session: Session, *, keys: Sequence[str]) -> None:
    """Delete the aggregate rows with these keys (in chunks: bound-parameter counts are limited)."""
    t = SubjectAggregateRow.__table__  # type: ignore[attr-defined]
    keys = list(keys)
    for k in range(0, len(keys), 1000):
        session.execute(delete(t).where(t.c.subject_normalized.in_(keys[k : k + 1000])))


def _bucket_select(*, evidence: str, rating: int, limit: int) -> Select[Any]:
    # Newest first within one bucket; the id tie-break matches service.scoring.select_candidates.
    inner = (
        select(*_FACT_COLUMNS)
        .where(
            col(ReviewRow.subject_normalized) == bindparam("subject"),
            col(ReviewRow.evidence) == evidence,
            col(ReviewRow.rating_value) == rating,
            col(ReviewRow.superseded_by).is_(None),
        )
        .order_by(col(ReviewRow.review_time).desc(), col(ReviewRow.id).asc())
        .limit(limit)
    )
    # Wrapped in a subquery: SQLite refuses ORDER BY/LIMIT on the members of a compound SELECT.
    return select(inner.subquery())


@lru_cache(maxsize=512)
def _candidates_stmt(buckets: tuple[tuple[str, int], ...], per_bucket: int) -> Select[Any] | CompoundSelect[Any]:
    # Building the statement costs more than running it on an index: keep one per set of non-empty buckets.
    members = [_bucket_select(evidence=e, rating=r, limit=per_bucket) for e, r in buckets]
    return members[0] if len(members) == 1 else union_all(*members)


def bucket_candidates(
    session: Session, *, subject_normalized: str, buckets: Sequence[tuple[str, int]], per_bucket: int
) -> list[ReviewFacts]:
    """For each ``(evidence, rating)`` bucket: its ``per_bucket`` most recent live reviews of the subject (time
    descending, id ascending), all buckets in one UNION ALL query. Pass only non-empty buckets: each member reads
    at most ``per_bucket`` index entries when an index leads with (subject, evidence, rating, time) — see
    docs/scoring.md — and otherwise walks the subject's (subject, time) index until it has found them."""
    if not buckets or per_bucket < 1:
        return []
    stmt = _candidates_stmt(tuple(buckets), per_bucket)
    return [_facts(r) for r in session.connection().execute(stmt, {"subject": subject_normalized})]


def review_subjects(session: Session) -> list[str]:
    """Every subject with at least one stored review, in key order (O(subjects) memory)."""
    stmt = select(col(ReviewRow.subject_normalized)).distinct().order_by(col(ReviewRow.subject_normalized))
    return [str(s) for s in session.execute(stmt).scalars()]


def subject_reviews(session: Session, *, subject_normalized: str) -> list[ReviewFacts]:
    """Every review of the subject, live and superseded (O(n): explain and audits only)."""
    stmt = (
        select(*_FACT_COLUMNS)
        .where(col(ReviewRow.subject_normalized) == subject_normalized)
        .order_by(col(ReviewRow.review_time), col(ReviewRow.id))
    )
    return [_facts(r) for r in session.execute(stmt)]


def iter_reviews_by_subject(session: Session, *, chunk: int = 5000) -> Iterator[list[ReviewFacts]]:
    """All reviews grouped by subject (one list per subject, subjects in key order), read in keyset-paginated
    chunks so memory holds one subject's reviews plus a chunk."""
    after: tuple[str, int, str] | None = None
    current: list[ReviewFacts] = []
    while True:
        stmt = select(*_FACT_COLUMNS)
        if after is not None:
            s, t, i = after
            stmt = stmt.where(
                (col(ReviewRow.subject_normalized) > s)
                | and_(col(ReviewRow.subject_normalized) == s, col(ReviewRow.review_time) > t)
                | and_(col(ReviewRow.subject_normalized) == s, col(ReviewRow.review_time) == t, col(ReviewRow.id) > i)
            )
        stmt = stmt.order_by(col(ReviewRow.subject_normalized), col(ReviewRow.review_time), col(ReviewRow.id)).limit(
            chunk
        )
        rows = [_facts(r) for r in session.execute(stmt)]
        for f in rows:
            if current and current[0].subject_normalized != f.subject_normalized:
                yield current
                current = []
            current.append(f)
        if len(rows) < chunk:
            if current:
                yield current
            return
        last = rows[-1]
        after = (last.subject_normalized, last.review_time, last.id)
