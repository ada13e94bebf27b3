"""Engine and session factory. Called by the app factory / CLI, never at import time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

# A pooled PostgreSQL connection idle for longer than this is pinged before use (see ``make_engine``).
IDLE_PING_SECONDS = 2.0


def make_engine(*, url: str, echo: bool = False, idle_ping_seconds: float = IDLE_PING_SECONDS) -> Engine:
    """Create an engine. SQLite gets WAL + a busy timeout so the API and the publisher thread can share it.

    PostgreSQL: a pooled connection is pinged before use only when it sat idle in the pool for more than
    ``idle_ping_seconds`` (a dead one is replaced, as ``pool_pre_ping`` would). A connection in steady use is not
    pinged — ``pool_pre_ping`` cost one round trip per checkout, several per submission. If the server drops
    connections under steady use (a restart), the statement that meets a dead connection fails (the API answers
    503 ``database-unavailable``) and SQLAlchemy then invalidates every connection of the pool opened before that
    moment, so the next ones reconnect.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=10)

    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_conn: Any, record: Any) -> None:
        record.info["omatrust_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("omatrust_idle_since")
        if since is None or time.monotonic() - since <= idle_ping_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as err:
            # the pool discards this connection and checks out another (a fresh one when all are dead)
            raise exc.DisconnectionError("pooled connection is dead") from err

    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_scope(engine: Engine) -> Iterator[Connection]:
    """A connection for reads that need no transaction (each statement sees the data committed when it starts):
    autocommit, so a one-statement read costs one round trip (no BEGIN/COMMIT)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn
