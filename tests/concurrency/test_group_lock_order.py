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
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.chain.outbox import Confirmation
from service.store.aggregates import lock_state
from service.store.batch import Rider, insert_rows, live_reviews_of, rider_key
from service.store.engine import session_scope
from service.store.jobqueue import publish_job
from service.store.judged import Submission, lock_attesters, store_submissions
from service.workflows.aggregate_batch import ChunkAggregates
from service.workflows.outbox import SqlOutbox
from service.workflows.withdraw import withdraw_review
from tests.store.test_group_store import NOW, S1, S2, Item, _alone, _runtime, _submission

pytestmark = pytest.mark.postgres
RELAYER = "0x" + "99" * 20
TIMEOUT = 30.0


class Background:
    """``work(session)`` in a transaction of its own, on a thread; :meth:`until_blocked` returns once that
    transaction waits for a lock (read from ``pg_locks``), :meth:`outcome` once it is over."""

    def __init__(self, engine: Engine, work: Callable[[Session], object]) -> None:
        self.engine, self.pid = engine, 0
        self.result: object = None
        self.started = threading.Event()  # its backend pid is known (or it failed before)

        def run() -> None:
            try:
                with session_scope(engine) as session:
                    self.pid = int(session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
                    self.started.set()
                    self.result = work(session)
            except Exception as exc:
                self.result = exc
            self.started.set()

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def until_blocked(self, what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not (self.started.is_set() and self.pid and self._waiting()):
            assert self.thread.is_alive(), self.result
            assert time.monotonic() < deadline, f"it never waited for {what}"
            self.thread.join(0.01)

    def outcome(self) -> object:
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()
        return self.result

    def _waiting(self) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = :p AND NOT granted)"),
                                     {"p": self.pid}).scalar())  # fmt: skip


def _with_riders(items: list[Item], riders: list[Rider]) -> list[Submission]:
    return [Submission(**{**{f: getattr(s, f) for f in Submission.__dataclass_fields__}, "riders": [rider]})
            for s, rider in zip((_submission(i, NOW) for i in items), riders, strict=True)]  # fmt: skip


def _group(engine: Engine, subs: list[Submission]) -> Callable[[Session], object]:
    return lambda session: store_submissions(session, items=subs, aggregates=ChunkAggregates(rt=_runtime(engine)),
                                             now=NOW)  # fmt: skip


def _jobs(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar_one())


def test_a_group_waits_for_an_aggregate_row_before_inserting_its_job(pg_engine: Engine) -> None:
    job = publish_job(relayer=RELAYER)
    items = [Item("group-a", "0x" + "a1" * 20, S1, 0), Item("group-b", "0x" + "b2" * 20, S2, 0)]
    subs = _with_riders(items, [job, job])
    with Session(pg_engine) as single:  # the one-review path, up to its write statement
        lock_attesters(single, attesters=["0x" + "c3" * 20])
        lock_state(single, subject_normalized=S1, now=NOW)
        single.commit()  # the aggregate row exists for both (as in steady state) …
        lock_attesters(single, attesters=["0x" + "c3" * 20])
        lock_state(single, subject_normalized=S1, now=NOW)  # … and this transaction holds it
        group = Background(pg_engine, _group(pg_engine, subs))
        group.until_blocked("the aggregate row")
        insert_rows(single, tables=[], riders=[job])  # the single write's job: must not wait on the group
        single.commit()
    stored = group.outcome()
    assert isinstance(stored, list), stored
    assert [s.review_id for s in stored] == ["group-a", "group-b"]
    assert _jobs(pg_engine) == 1


def test_groups_insert_their_publish_jobs_in_one_order(pg_engine: Engine) -> None:
    """Two relayer keys: a group inserts their jobs in ``rider_key`` order whatever the order of its items, so two
    groups (two API processes) never each hold one job row while waiting for the other's."""
    first, second = sorted([publish_job(relayer="0x" + "11" * 20), publish_job(relayer="0x" + "22" * 20)],
                           key=rider_key)  # fmt: skip
    items = [Item("g-second", "0x" + "a1" * 20, S1, 0), Item("g-first", "0x" + "b2" * 20, S2, 0)]
    subs = _with_riders(items, [second, first])
    with Session(pg_engine) as other:  # another group, part way: it inserted the first job, the second comes next
        insert_rows(other, tables=[], riders=[first])
        group = Background(pg_engine, _group(pg_engine, subs))
        group.until_blocked("the first job's row")
        insert_rows(other, tables=[], riders=[second])  # must not wait on the group
        other.commit()
    assert isinstance(group.outcome(), list), group.result
    assert _jobs(pg_engine) == 2


def test_a_transaction_that_withdraws_then_confirms_takes_aggregate_rows_last(pg_engine: Engine) -> None:
    """The publisher's claim transaction: an item failed for good (its review withdrawn), then another confirmed
    (its review row locked). Meanwhile the second review's author re-reviews the subject through the write path,
    which holds that review row and then wants the subject's aggregate row. The withdrawal's aggregate change waits
    for the commit, so the claim never holds the aggregate row while it waits for the review row."""
    failed_by, confirmed_by = "0x" + "a1" * 20, "0x" + "b2" * 20
    _alone(pg_engine, Item("to-withdraw", failed_by, S1, 0), NOW)
    _alone(pg_engine, Item("to-confirm", confirmed_by, S1, 0), NOW)
    with pg_engine.connect() as conn:
        item_id = conn.execute(text("SELECT id FROM outbox WHERE review_id = 'to-confirm'")).scalar_one()
    rt = _runtime(pg_engine)
    outbox = SqlOutbox(engine=pg_engine)

    def claim(session: Session) -> str:
        withdraw_review(session, rt=rt, review_id="to-withdraw", now=NOW)
        confirmed = Confirmation(item_id=item_id, uid="0x" + "ee" * 32, tx_hash="0xt", block_number=5)
        outbox._confirmed(session, confirmed=[confirmed], now=NOW)
        return "committed"

    with Session(pg_engine) as single:  # the write path of a re-review by confirmed_by, up to its aggregate lock
        lock_attesters(single, attesters=[confirmed_by])
        assert [r.id for r in live_reviews_of(single, pairs=[(confirmed_by, S1)])] == ["to-confirm"]
        publisher = Background(pg_engine, claim)
        publisher.until_blocked("the review row")
        lock_state(single, subject_normalized=S1, now=NOW)  # must not wait on the claim
        single.commit()
    assert publisher.outcome() == "committed", publisher.result
    with pg_engine.connect() as conn:  # and the withdrawal did reach the aggregate at commit
        live = conn.execute(text("SELECT review_count FROM subject_aggregates WHERE subject_normalized = :s"),
                            {"s": S1}).scalar_one()  # fmt: skip
    assert live == 1
