"""The write path's locking reads sent as one PostgreSQL pipeline (``store.judged.lock_and_read``): the same facts as
the same reads run one by one, no statement through SQLAlchemy on the way, the locks taken as before, and a
database error raised as SQLAlchemy's, classified as the write path classifies it. Always on PostgreSQL (the one
database that pipelines)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, exc, text
from sqlalchemy.engine import Engine

from service.store.aggregates import lock_many
from service.store.engine import session_scope
from service.store.judged import ChunkWriter, _lock_key, lock_and_read, lock_attesters
from service.store.outbox import outbox_facts_many
from service.store.pipeline import can_pipeline
from service.workflows.submit import _database_unusable
from tests.store.test_group_store import BEFORE, GROUP, NOW, R1, R2, S1, S2, A, B, C, Item, _alone
from tests.support.db import migrated_postgres_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg() -> Iterator[Engine]:
    with migrated_postgres_engine(prefix="omatrust_pl") as engine:
        yield engine


def _facts(writer: ChunkWriter, pairs: list[tuple[str, str]], keys: list[str]) -> tuple[Any, ...]:
    live = [(p, r.id if (r := writer.live_review(attester=p[0], subject_normalized=p[1])) else None) for p in pairs]
    return tuple(live), tuple((k, writer.receipt_holder(replay_key=k)) for k in keys)


def test_the_pipelined_reads_find_what_the_reads_one_by_one_find(pg: Engine) -> None:
    for item in [*BEFORE, Item("b-s2", B, S2, 0, (R2,))]:
        _alone(pg, item, NOW)
    attesters = [A, B, C]
    requests = [(i.key(), i.attester) for i in [*BEFORE, *GROUP]]
    pairs = sorted({(a, s) for a in attesters for s in (S1, S2)})
    keys = [R1, R2, "0x" + "99" * 32]
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with session_scope(pg) as session:
        assert can_pipeline(session.connection())
        event.listen(pg, "before_cursor_execute", count)
        try:
            facts, writer = lock_and_read(session, attesters=attesters, requests=requests, pairs=pairs,
                                          replay_keys=keys, now=NOW)  # fmt: skip
        finally:
            event.remove(pg, "before_cursor_execute", count)
        piped = (facts, _facts(writer, pairs, keys), writer.locked_aggregates)
        _assert_held(pg, attester=B, review_id="b-s2", replay_key=R2, subject=S2)  # until this transaction ends
    assert [s.split()[0:2] for s in statements] == [["SELECT", "reviews.id,"]]  # only the ORM load of live rows
    with session_scope(pg) as session:
        lock_attesters(session, attesters=attesters)
        one_by_one = (outbox_facts_many(session, requests=requests),
                      _facts(ChunkWriter.load(session, pairs=pairs, replay_keys=keys), pairs, keys),
                      lock_many(session, subjects=[S1, S2], now=NOW))  # fmt: skip
    assert piped == one_by_one
    assert piped[0][0].known_review_id == "pre-a-s1"  # a stored request, and ...
    assert dict(piped[1][0])[(A, S1)] == "pre-a-s1"  # ... live reviews and claims were found
    assert dict(piped[1][1]) == {R1: "pre-a-s1", R2: "b-s2", "0x" + "99" * 32: None}
    assert piped[2] is not None
    assert piped[2][S2]["counts"]  # the subjects' aggregate states (one review about S2 stored)


def _assert_held(pg: Engine, *, attester: str, review_id: str, replay_key: str, subject: str) -> None:
    """Another connection cannot take the attester's lock, the review row, the claim row or the subject's aggregate
    row (NOWAIT)."""
    with pg.connect() as other:
        key = _lock_key(attester)
        assert other.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar() is False
        for sql, value in (("SELECT 1 FROM reviews WHERE id = :v FOR UPDATE NOWAIT", review_id),
                           ("SELECT 1 FROM receipt_claims WHERE replay_key = :v FOR UPDATE NOWAIT", replay_key),
                           ("SELECT 1 FROM subject_aggregates WHERE subject_normalized = :v FOR UPDATE NOWAIT",
                            subject)):  # fmt: skip
            with pytest.raises(exc.OperationalError) as refused:
                other.execute(text(sql), {"v": value})
            assert getattr(refused.value.orig, "sqlstate", None) == "55P03"
            other.rollback()


def test_a_lock_held_elsewhere_is_waited_for_and_its_timeout_is_sqlalchemys_error(pg: Engine) -> None:
    def write_a_then_b() -> None:
        with session_scope(pg) as session:  # (rolled back when it raises)
            session.execute(text("SET LOCAL lock_timeout = '200ms'"))
            lock_and_read(session, attesters=[A], requests=[("0x" + "01" * 32, A)], pairs=[(A, S1)], replay_keys=[],
                          now=NOW)  # fmt: skip
            lock_and_read(session, attesters=[B, C], requests=[("0x" + "02" * 32, B)], pairs=[(B, S1)],
                          replay_keys=[], now=NOW)  # fmt: skip

    with session_scope(pg) as holder:
        lock_attesters(holder, attesters=[B])  # another writer of B holds B's lock
        with pytest.raises(exc.OperationalError) as raised:  # B is taken: the pipeline waits, then gives up
            write_a_then_b()
    assert getattr(raised.value.orig, "sqlstate", None) == "55P03"  # lock_not_available
    assert "pg_advisory_xact_lock" in str(raised.value.statement)  # the statement that failed is the one named
    assert _database_unusable(raised.value)  # answered 503 at once, as the same statement run alone would be
