"""PostgreSQL: a group of submissions takes its locks in the order the one-review path takes them (attester locks →
review rows → receipt claims → subject aggregate rows → inserts), so a group and a single write never deadlock.

The single write is held open at the point the one-review path reaches before its write statement: it holds its
attester's lock and a subject's aggregate row. The group, about that subject too, must then wait for that row
*before* it inserts anything — in particular the publish job of the relayer key, which the single write inserts
next. (Had the group inserted its job first, the single write's job insert would wait on the group while the group
waits on the aggregate row: a deadlock.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.store.aggregates import lock_state
from service.store.batch import insert_rows
from service.store.engine import make_engine, session_scope
from service.store.jobqueue import publish_job
from service.store.judged import Submission, lock_attesters, store_submissions
from service.store.migrate import upgrade
from service.workflows.aggregate_batch import ChunkAggregates
from tests.store.test_group_store import NOW, S1, S2, Item, _runtime, _submission
from tests.support.db import fresh_postgres_url

pytestmark = pytest.mark.postgres
RELAYER = "0x" + "99" * 20
TIMEOUT = 30.0


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    with fresh_postgres_url(prefix="omatrust_order") as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        yield engine
        engine.dispose()


def _waiting_on_a_lock(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = :p AND NOT granted)"),
                                 {"p": pid}).scalar())  # fmt: skip


def test_a_group_waits_for_an_aggregate_row_before_inserting_its_job(pg_engine: Engine) -> None:
    job = publish_job(relayer=RELAYER)
    items = [Item("group-a", "0x" + "a1" * 20, S1, 0), Item("group-b", "0x" + "b2" * 20, S2, 0)]
    subs = [Submission(**{**{f: getattr(s, f) for f in Submission.__dataclass_fields__}, "riders": [job]})
            for s in (_submission(i, NOW) for i in items)]  # fmt: skip
    outcome: dict[str, object] = {}
    pid: list[int] = []

    def group() -> None:
        try:
            with session_scope(pg_engine) as session:
                pid.append(int(session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()))
                outcome["group"] = store_submissions(session, items=subs, aggregates=ChunkAggregates(
                    rt=_runtime(pg_engine)), now=NOW)  # fmt: skip
        except Exception as exc:
            outcome["group"] = exc

    with Session(pg_engine) as single:  # the one-review path, up to its write statement
        lock_attesters(single, attesters=["0x" + "c3" * 20])
        lock_state(single, subject_normalized=S1, now=NOW)
        single.commit()  # the aggregate row exists for both (as in steady state) …
        lock_attesters(single, attesters=["0x" + "c3" * 20])
        lock_state(single, subject_normalized=S1, now=NOW)  # … and this transaction holds it
        worker = threading.Thread(target=group)
        worker.start()
        deadline = time.monotonic() + TIMEOUT
        while not (pid and _waiting_on_a_lock(pg_engine, pid[0])):  # the group is blocked on S1's row
            assert worker.is_alive(), outcome
            assert time.monotonic() < deadline, "the group never waited for the aggregate row"
            worker.join(0.01)
        insert_rows(single, tables=[], riders=[job])  # the single write's job: must not wait on the group
        single.commit()
    worker.join(TIMEOUT)
    assert not worker.is_alive()
    stored = outcome["group"]
    assert isinstance(stored, list), stored
    assert [s.review_id for s in stored] == ["group-a", "group-b"]  # type: ignore[attr-defined]
    with pg_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar() == 1


def test_groups_insert_their_publish_jobs_in_one_order(pg_engine: Engine) -> None:
    """Two relayer keys: a group inserts their jobs in ``rider_key`` order whatever the order of its items, so two
    groups (two API processes) never each hold one job row while waiting for the other's."""
    from service.store.batch import rider_key

    first, second = sorted([publish_job(relayer="0x" + "11" * 20), publish_job(relayer="0x" + "22" * 20)],
                           key=rider_key)  # fmt: skip
    items = [Item("g-second", "0x" + "a1" * 20, S1, 0), Item("g-first", "0x" + "b2" * 20, S2, 0)]
    subs = [Submission(**{**{f: getattr(s, f) for f in Submission.__dataclass_fields__}, "riders": [job]})
            for s, job in zip((_submission(i, NOW) for i in items), (second, first), strict=True)]  # fmt: skip
    outcome: dict[str, object] = {}
    pid: list[int] = []

    def group() -> None:
        try:
            with session_scope(pg_engine) as session:
                pid.append(int(session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()))
                outcome["group"] = store_submissions(session, items=subs, aggregates=ChunkAggregates(
                    rt=_runtime(pg_engine)), now=NOW)  # fmt: skip
        except Exception as exc:
            outcome["group"] = exc

    with Session(pg_engine) as other:  # another group, part way: it inserted the first job, the second comes next
        insert_rows(other, tables=[], riders=[first])
        worker = threading.Thread(target=group)
        worker.start()
        deadline = time.monotonic() + TIMEOUT
        while not (pid and _waiting_on_a_lock(pg_engine, pid[0])):  # the group waits for the first job's row
            assert worker.is_alive(), outcome
            assert time.monotonic() < deadline, "the group never waited for the first job"
            worker.join(0.01)
        insert_rows(other, tables=[], riders=[second])  # must not wait on the group
        other.commit()
    worker.join(TIMEOUT)
    assert not worker.is_alive()
    assert isinstance(outcome["group"], list), outcome["group"]
    with pg_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar() == 2


def test_a_transaction_that_withdraws_then_confirms_takes_aggregate_rows_last(pg_engine: Engine) -> None:
    """The publisher's claim transaction: an item failed for good (its review withdrawn), then another confirmed
    (its review row locked). Meanwhile the second review's author re-reviews the subject through the write path,
    which holds that review row and then wants the subject's aggregate row. The withdrawal's aggregate change waits
    for the commit, so the claim never holds the aggregate row while it waits for the review row."""
    from service.chain.outbox import Confirmation
    from service.store.batch import live_reviews_of
    from service.workflows.outbox import SqlOutbox
    from service.workflows.withdraw import withdraw_review
    from tests.store.test_group_store import _alone

    failed_by, confirmed_by = "0x" + "a1" * 20, "0x" + "b2" * 20
    _alone(pg_engine, Item("to-withdraw", failed_by, S1, 0), NOW)
    _alone(pg_engine, Item("to-confirm", confirmed_by, S1, 0), NOW)
    with pg_engine.connect() as conn:
        item_id = conn.execute(text("SELECT id FROM outbox WHERE review_id = 'to-confirm'")).scalar_one()
    rt = _runtime(pg_engine)
    outbox = SqlOutbox(engine=pg_engine)
    outcome: dict[str, object] = {}
    pid: list[int] = []

    def claim() -> None:
        try:
            with session_scope(pg_engine) as session:
                pid.append(int(session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()))
                withdraw_review(session, rt=rt, review_id="to-withdraw", now=NOW)
                confirmed = Confirmation(item_id=item_id, uid="0x" + "ee" * 32, tx_hash="0xt", block_number=5)
                outbox._confirmed(session, confirmed=[confirmed], now=NOW)
            outcome["claim"] = "committed"
        except Exception as exc:
            outcome["claim"] = exc

    with Session(pg_engine) as single:  # the write path of a re-review by confirmed_by, up to its aggregate lock
        lock_attesters(single, attesters=[confirmed_by])
        assert [r.id for r in live_reviews_of(single, pairs=[(confirmed_by, S1)])] == ["to-confirm"]
        worker = threading.Thread(target=claim)
        worker.start()
        deadline = time.monotonic() + TIMEOUT
        while not (pid and _waiting_on_a_lock(pg_engine, pid[0])):  # the claim waits for the review row
            assert worker.is_alive(), outcome
            assert time.monotonic() < deadline, "the claim never waited for the review row"
            worker.join(0.01)
        lock_state(single, subject_normalized=S1, now=NOW)  # must not wait on the claim
        single.commit()
    worker.join(TIMEOUT)
    assert outcome["claim"] == "committed", outcome["claim"]
    with pg_engine.connect() as conn:  # and the withdrawal did reach the aggregate at commit
        live = conn.execute(text("SELECT review_count FROM subject_aggregates WHERE subject_normalized = :s"),
                            {"s": S1}).scalar_one()  # fmt: skip
    assert live == 1
