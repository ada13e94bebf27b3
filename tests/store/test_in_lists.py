"""List parameters of the submit path's statements: on PostgreSQL one array parameter — the statement text is the
same whatever the list's length (compiled once, prepared by the driver) — and the rows found are the rows an
expanding ``IN`` finds, on the database the suite runs on. (The store's own statements built this way are run on
both databases by tests/store/test_group_store.py, which compares a group's rows with one-by-one writes.)"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.dialects import postgresql

from service.store.engine import make_engine
from service.store.in_lists import ByDialect
from service.store.outbox import _FACTS_MANY
from tests.support.db import fresh_database_url


def test_postgresql_statements_do_not_depend_on_the_list_length() -> None:
    stmt = _FACTS_MANY.on_dialect("postgresql")
    texts = set()
    for n in (1, 3, 40):
        compiled = stmt.compile(dialect=postgresql.psycopg.dialect())  # type: ignore[attr-defined]
        params = compiled.construct_params({"keys": [f"k{i}" for i in range(n)], "attesters": ["a"] * n})
        texts.add(str(compiled) % {k: "?" for k in params})  # what the server is sent, the list as one value
    assert len(texts) == 1
    assert "ANY" in texts.pop()
    assert "POSTCOMPILE" in str(_FACTS_MANY.on_dialect("sqlite"))


def test_the_rows_found_are_the_ones_named(tmp_path: Path) -> None:
    table = Table("in_list_probe", MetaData(), Column("k", String(8), primary_key=True))
    stmt = ByDialect(lambda in_list: select(table.c.k).where(in_list(table.c.k, "ks")).order_by(table.c.k))
    with fresh_database_url(tmp_path) as url:
        engine = make_engine(url=url)
        try:
            table.create(engine)
            with engine.begin() as conn:
                conn.execute(insert(table), [{"k": k} for k in ("a", "b", "c", "d")])
            with engine.connect() as conn:
                for wanted in ([], ["b"], ["d", "a", "zz", "a"]):
                    got = list(conn.execute(stmt.on(conn), {"ks": wanted}).scalars())
                    assert got == sorted(set(wanted) & {"a", "b", "c", "d"})
        finally:
            engine.dispose()
