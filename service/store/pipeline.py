"""Several statements in one round trip on PostgreSQL (a psycopg pipeline), in the caller's transaction.

A write transaction's locking reads do not depend on each other's results, only on their order: the server runs a
pipeline's statements one after the other, in the order sent, so the locks are taken exactly as if each statement
had waited for the one before — but the client sends them together and waits once (psycopg still waits for the
transaction's BEGIN on its own first). On this project's 2-core VM a round trip costs 0.2–0.4 ms of client CPU
(system calls, waking the thread, taking the GIL back). A ``statement_timeout`` set on the server would bound the
whole pipeline, not each statement (the project sets none).

The statements are SQLAlchemy Core statements compiled once each for the connection's dialect; their parameters
must be plain values (strings, integers, lists of them) and their columns plain types: no SQLAlchemy type
processing runs. Errors are raised as SQLAlchemy's (``DBAPIError.instance``), as the same statements run one by one
would raise them, so callers classify them the same way; a connection found broken is invalidated first, as
SQLAlchemy does. After an error the transaction is aborted: the caller must roll it back (``session_scope`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement

from service.store.in_lists import ByDialect

T = TypeVar("T")
R = TypeVar("R", covariant=True)
_COMPILED: dict[tuple[int, str], tuple[ClauseElement, str, Any]] = {}


def can_pipeline(conn: Connection) -> bool:
    """True when ``conn`` is PostgreSQL through psycopg with a libpq that supports pipelines."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg" and psycopg.Pipeline.is_supported()


def _compiled(conn: Connection, stmt: ClauseElement) -> tuple[str, Any]:
    key = (id(stmt), conn.dialect.name)
    found = _COMPILED.get(key)
    if found is None or found[0] is not stmt:  # (the statement is kept: its id cannot be reused meanwhile)
        compiled = stmt.compile(dialect=conn.dialect)
        sql = str(compiled)
        if "POSTCOMPILE" in sql:  # rendered per execution by SQLAlchemy only: use store.in_lists
            raise ValueError("a statement with expanding IN parameters cannot be pipelined")
        found = _COMPILED[key] = (stmt, sql, compiled)
    return found[1], found[2]


def run_pipelined(
    conn: Connection, *, statements: Sequence[tuple[ClauseElement, Mapping[str, Any]]]
) -> list[list[tuple[Any, ...]]]:
    """Run ``statements`` (built once, module level) in order in one round trip on ``conn``'s transaction (see
    :func:`can_pipeline`); returns each one's rows as plain tuples.

    Raises:
        sqlalchemy.exc.DBAPIError (OperationalError, IntegrityError, …): what the database or driver raised.
    """
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, psycopg.Connection)
    sent: list[tuple[str, Mapping[str, Any]]] = []
    cursors: list[psycopg.Cursor[Any]] = []
    try:
        with raw.pipeline():
            for stmt, params in statements:
                sql, compiled = _compiled(conn, stmt)
                values = compiled.construct_params(dict(params))
                sent.append((sql, values))
                cursors.append(raw.cursor())
                cursors[-1].execute(sql, values)
        return [cursor.fetchall() if cursor.description is not None else [] for cursor in cursors]
    except psycopg.Error as exc:
        sql, values = sent[_failed(cursors)] if sent else ("", {})
        broken = raw.broken or raw.closed
        if broken:
            conn.invalidate(exc)
        raise sa_exc.DBAPIError.instance(sql, values, exc, psycopg.Error, connection_invalidated=broken) from exc
    finally:
        for cursor in cursors:
            cursor.close()


def _failed(cursors: Sequence[psycopg.Cursor[Any]]) -> int:
    """The position of the statement the server refused (the later ones were skipped), else the first."""
    for i, cursor in enumerate(cursors):
        result = cursor.pgresult
        if result is not None and result.status == psycopg.pq.ExecStatus.FATAL_ERROR:
            return i
    return 0


@dataclass(frozen=True, slots=True)
class Read(Generic[R]):
    """One read: its statement (built once; per dialect or not), its parameters and what its rows become."""

    statement: ClauseElement | ByDialect[Any]
    params: Mapping[str, Any]
    result: Callable[[Iterable[Sequence[Any]]], R]

    def on(self, conn: Connection) -> Any:
        return self.statement.on(conn) if isinstance(self.statement, ByDialect) else self.statement


def run_read(conn: Connection, read: Read[T]) -> T:
    """Run one read on ``conn``.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    return read.result(conn.execute(read.on(conn), dict(read.params)))


def run_reads(conn: Connection, *, reads: Sequence[Read[Any]]) -> list[Any]:
    """Run ``reads`` in order on ``conn``'s transaction: in one round trip where the connection can pipeline
    (:func:`run_pipelined`), else one by one. Returns each read's result.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    if len(reads) > 1 and can_pipeline(conn):
        rows = run_pipelined(conn, statements=[(r.on(conn), r.params) for r in reads])
        return [r.result(found) for r, found in zip(reads, rows, strict=True)]
    return [run_read(conn, r) for r in reads]
