"""``column IN (a list)`` in statements built once, per dialect.

SQLAlchemy renders an expanding ``IN`` parameter again at every execution (one placeholder and cast per element):
in the submit path that cost more than running the statement. On PostgreSQL the list goes as one array parameter
instead (``column = ANY(:list)``): one statement text whatever the length, compiled once and prepared by the driver.
Other databases keep the expanding form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlmodel import Session

S = TypeVar("S")
InList = Callable[[Any, str], Any]  # (column, parameter name) → the condition


def _array(column: Any, name: str) -> Any:
    return column == any_(bindparam(name, type_=ARRAY(column.type)))


def _expanding(column: Any, name: str) -> Any:
    return column.in_(bindparam(name, expanding=True))


class ByDialect(Generic[S]):
    """A statement ``build(in_list)`` built twice at import: for PostgreSQL and for the others."""

    def __init__(self, build: Callable[[InList], S]) -> None:
        self._postgresql = build(_array)
        self._other = build(_expanding)

    def on(self, conn: Session | Connection) -> S:
        """The statement for the database ``conn`` talks to."""
        dialect = conn.get_bind().dialect if isinstance(conn, Session) else conn.dialect
        return self.on_dialect(dialect.name)

    def on_dialect(self, name: str) -> S:
        return self._postgresql if name == "postgresql" else self._other
