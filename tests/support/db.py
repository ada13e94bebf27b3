"""Database URLs for tests: a fresh SQLite file by default, a fresh PostgreSQL database when OMATRUST_TEST_DB=postgres.

PostgreSQL databases are created per test (cheap: template0 copy) and dropped afterwards, so xdist workers never
share state.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from service.store.engine import make_engine
from service.store.migrate import upgrade

PG_ADMIN_URL = os.environ.get("OMATRUST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def backend() -> str:
    return os.environ.get("OMATRUST_TEST_DB", "sqlite")


@contextmanager
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    if backend() != "postgres":
        yield f"sqlite:///{tmp_path / 'omatrust.db'}"
        return
    with fresh_postgres_url(prefix="omatrust_t") as url:
        yield url


@contextmanager
def fresh_postgres_url(*, prefix: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (``{prefix}_`` + random hex), dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def migrated_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a fresh, migrated database (see :func:`fresh_database_url`); disposed afterwards. Modules take
    it as their ``engine`` fixture with ``engine = migrated_engine``."""
    with fresh_database_url(tmp_path) as url:
        eng = make_engine(url=url)
        upgrade(engine=eng)
        yield eng
        eng.dispose()


@contextmanager
def migrated_postgres_engine(*, prefix: str) -> Iterator[Engine]:
    """An engine on a new PostgreSQL database (:func:`fresh_postgres_url`), schema migrated, disposed on exit."""
    with fresh_postgres_url(prefix=prefix) as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        try:
            yield engine
        finally:
            engine.dispose()
