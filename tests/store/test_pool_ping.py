"""PostgreSQL pool without ``pool_pre_ping``: a connection that sat idle is pinged before use and replaced when the
server dropped it; one in steady use is not pinged, so a drop fails the statement that meets it once and SQLAlchemy
then replaces every connection opened before that moment. Autocommit reads (``read_scope``) send no BEGIN."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from service.store.engine import make_engine, read_scope, session_scope
from tests.support.db import fresh_postgres_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_url(prefix="omatrust_pool") as url:
        yield url


def _backend_pid(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(engine: Engine, pid: int) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # waits (up to 5 s) until the backend has exited, so the next use meets a dead connection
        conn.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})


def test_an_idle_dead_connection_is_replaced_before_use(pg_url: str) -> None:
    engine = make_engine(url=pg_url, idle_ping_seconds=0.0)  # every checked-in connection counts as idle
    admin = make_engine(url=pg_url)
    try:
        pid = _backend_pid(engine)
        _terminate(admin, pid)
        assert _backend_pid(engine) != pid  # the ping found it dead: a fresh connection, no error
    finally:
        engine.dispose()
        admin.dispose()


def test_a_busy_dead_connection_fails_once_then_the_pool_reconnects(pg_url: str) -> None:
    engine = make_engine(url=pg_url, idle_ping_seconds=3600.0)  # never pinged
    admin = make_engine(url=pg_url)
    try:
        pid = _backend_pid(engine)
        _terminate(admin, pid)
        with pytest.raises(OperationalError):
            _backend_pid(engine)
        assert _backend_pid(engine) != pid
    finally:
        engine.dispose()
        admin.dispose()


def test_read_scope_sends_no_transaction_statements(pg_url: str) -> None:
    engine = make_engine(url=pg_url)
    try:
        with read_scope(engine) as conn:  # warm: the first connect reads server settings
            conn.execute(text("SELECT 1"))
        sent: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        with read_scope(engine) as conn:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            assert dbapi.autocommit
            assert conn.execute(text("SELECT 2")).scalar_one() == 2
            assert dbapi.info.transaction_status.name == "IDLE"  # no BEGIN was sent
        assert sent == ["SELECT 2"]
        with session_scope(engine) as session:  # the pooled connection is back to transactions
            session.execute(text("SELECT 3"))
            assert session.connection().connection.dbapi_connection.info.transaction_status.name == "INTRANS"
    finally:
        engine.dispose()
