"""Per-subject score aggregates as JSON state (the shape is the scoring package's; the store only keeps it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, String, Text, any_, bindparam, cast, delete, func, literal_column, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, select

from service.store.batch import Rider
from service.store.pipeline import Read, run_read
from service.store.scoring_queries import ensure_aggregate_row, ensure_aggregate_rows
from service.store.tables import SubjectAggregateRow

_T = SubjectAggregateRow.__table__  # type: ignore[attr-defined]


def load_for_update(session: Session, *, subject_normalized: str) -> SubjectAggregateRow | None:
    """The row, locked for the rest of the transaction on PostgreSQL (SQLite serializes writers anyway)."""
    stmt = (
        select(SubjectAggregateRow)
        .where(SubjectAggregateRow.subject_normalized == subject_normalized)
        .with_for_update()
    )
    return session.exec(stmt).first()


# Built once (bound parameters): building and cache-keying a statement per write cost more than running it.
_LOCK_STATE = select(_T.c.state).where(_T.c.subject_normalized == bindparam("key")).with_for_update()
_WRITE_STATE = (  # bound parameter names prefixed: it can ride along with a review's rows (batch.Rider)
    update(_T)
    .where(_T.c.subject_normalized == bindparam("agg_key"))
    .values(state=bindparam("agg_state"), review_count=bindparam("agg_count"), updated_at=bindparam("agg_at"))
)


def lock_state(session: Session, *, subject_normalized: str, now: int) -> dict[str, Any]:
    """The subject's stored state (``{}`` when empty), its row created empty when missing (race-free) and locked for
    the rest of the transaction on PostgreSQL. One statement when the row exists (the usual case): a locking read
    first, the insert only when it found nothing. Plain columns, no ORM object: write it back with
    :func:`write_state`.

    Raises:
        RuntimeError: the row was deleted three times over by concurrent rebuilds.
    """
    conn = session.connection()
    for _ in range(3):  # a rebuild may delete the row between our insert and our read: insert it again
        found = conn.execute(_LOCK_STATE, {"key": subject_normalized}).first()
        if found is not None:
            return found[0] or {}
        ensure_aggregate_row(session, key=subject_normalized, now=now)
    raise RuntimeError(f"the aggregate row of {subject_normalized!r} keeps disappearing")


def write_state(session: Session, *, subject_normalized: str, state: dict[str, Any], review_count: int,
                now: int, riders: list[Rider] | None = None) -> None:  # fmt: skip
    """UPDATE the row locked by :func:`lock_state` (one statement, no ORM object). ``riders``: append the UPDATE
    there instead, for the caller to run with its rows (:func:`~service.store.batch.insert_rows`) — nothing may
    read the row before."""
    params = {"agg_key": subject_normalized, "agg_state": state, "agg_count": review_count, "agg_at": now}
    if riders is not None:
        riders.append(Rider(statement=_WRITE_STATE, params=params))
    else:
        session.connection().execute(_WRITE_STATE, params)


def save(session: Session, *, subject_normalized: str, state: dict[str, Any], review_count: int, now: int) -> None:
    row = load_for_update(session, subject_normalized=subject_normalized)
    if row is None:
        row = SubjectAggregateRow(subject_normalized=subject_normalized, state=state, review_count=review_count,
                                  updated_at=now)  # fmt: skip
    else:
        row.state, row.review_count, row.updated_at = state, review_count, now
    session.add(row)



# Rows are inserted (or, existing, locked by the no-op update) in the order of the sorted keys: the write path's
# lock order — code-point order, as Python's sorted() (COLLATE "C": a database collation such as en_US orders
# "a-b" and "ab" the other way). The update leaves every indexed column as it is.
_UPSERT_LOCK = text(
    "INSERT INTO subject_aggregates (subject_normalized, state, review_count, updated_at)"
    " SELECT k, '{}', 0, :at FROM unnest(CAST(:keys AS varchar[])) AS k ORDER BY k COLLATE \"C\""
    " ON CONFLICT (subject_normalized) DO UPDATE SET updated_at = subject_aggregates.updated_at"
    " RETURNING subject_normalized, state"
)


def lock_many_read(*, subjects: Sequence[str], now: int) -> Read[dict[str, dict[str, Any]]]:
    """:func:`lock_many` on PostgreSQL as a read to run with others (``store.pipeline.run_reads``)."""
    return Read(statement=_UPSERT_LOCK, params={"keys": sorted(set(subjects)), "at": now},
                result=lambda rows: {key: state or {} for key, state in rows})  # fmt: skip


def lock_many(session: Session, *, subjects: Sequence[str], now: int) -> dict[str, dict[str, Any]]:
    """The stored states of these subjects (rows created empty where missing, race-free), locked in key order for
    the rest of the transaction on PostgreSQL (the write path's lock order). One statement whatever the count on
    PostgreSQL, two on SQLite."""
    keys = sorted(set(subjects))
    if session.get_bind().dialect.name == "postgresql":
        return run_read(session.connection(), lock_many_read(subjects=keys, now=now))
    ensure_aggregate_rows(session, keys=keys, now=now)
    out: dict[str, dict[str, Any]] = {}
    for k in range(0, len(keys), 500):  # bound parameters per statement are limited (SQLite)
        stmt = (
            select(col(SubjectAggregateRow.subject_normalized), col(SubjectAggregateRow.state))
            .where(col(SubjectAggregateRow.subject_normalized).in_(keys[k : k + 500]))
            .order_by(col(SubjectAggregateRow.subject_normalized))
            .with_for_update()
        )
        out.update((key, state or {}) for key, state in session.connection().execute(stmt))
    return out


_SAVED = func.json_populate_recordset(literal_column("NULL::subject_aggregates"),
                                      bindparam("agg_rows", type_=JSON)).table_valued(
    "subject_normalized", "state", "review_count", "updated_at"
).alias("saved")  # fmt: skip
# Every row in one JSON parameter (as ``batch.insert_rows``): one statement whatever the count, and its bound
# parameter is prefixed so it can ride along with a group's rows (batch.Rider).
_SAVE_MANY = (
    update(_T)
    .where(_T.c.subject_normalized == _SAVED.c.subject_normalized)
    .values(state=_SAVED.c.state, review_count=_SAVED.c.review_count, updated_at=_SAVED.c.updated_at)
)
_SAVE_EACH = (
    update(_T)
    .where(_T.c.subject_normalized == bindparam("key"))
    .values(state=bindparam("st"), review_count=bindparam("n"), updated_at=bindparam("at"))
)


_DROP_EMPTY = delete(_T).where(
    _T.c.subject_normalized == any_(bindparam("agg_unused", type_=ARRAY(String))),
    _T.c.review_count == literal_column("0"),
    cast(_T.c.state, Text) == literal_column("'{}'"),
)


def drop_empty(*, subjects: Sequence[str]) -> Rider:
    """A write (PostgreSQL; to run with the caller's rows or alone, ``batch.insert_rows``) deleting these subjects'
    aggregate rows, which the caller holds locked and read empty and did not change: rows the write path created
    when it locked them (``lock_many``) for reviews it then did not write — a repeated request, a refused item of a
    group. An empty row and no row mean the same; a row holding any state is never deleted."""
    return Rider(statement=_DROP_EMPTY, params={"agg_unused": sorted(subjects)})


def save_many(session: Session, *, rows: Sequence[tuple[str, dict[str, Any], int]], now: int,
              riders: list[Rider] | None = None) -> None:  # fmt: skip
    """UPDATE (subject, state, review count) of rows locked by :func:`lock_many`: one statement on PostgreSQL, one
    executemany elsewhere. ``riders`` (PostgreSQL): append the UPDATE there instead, for the caller to run with its
    rows (:func:`~service.store.batch.insert_rows`) — nothing may read these rows before."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.connection().execute(_SAVE_EACH, [{"key": k, "st": st, "n": n, "at": now} for k, st, n in rows])
        return
    saved = [{"subject_normalized": k, "state": st, "review_count": n, "updated_at": now} for k, st, n in rows]
    if riders is not None:
        riders.append(Rider(statement=_SAVE_MANY, params={"agg_rows": saved}))
    else:
        session.connection().execute(_SAVE_MANY, {"agg_rows": saved})
