"""Fixtures shared by the scale tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.db import fresh_postgres_url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one multi-process test (the processes need a server, not SQLite)."""
    with fresh_postgres_url(prefix="omatrust_scale") as url:
        yield url
