"""No global hot row (issue #15), on PostgreSQL: two writers of reviews about different subjects, both inside open
transactions, never wait on a shared row — the second commits under a ``lock_timeout`` while the first still holds
all its locks. The control: two writers of one subject do wait (its aggregate row), so the check can fail."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from service.store.judged import JudgedRows, store_judged_review
from service.store.tables import ReviewRow
from service.workflows.aggregates import apply_review_change, global_aggregate

pytestmark = pytest.mark.postgres
NOW = 1_767_225_600


def _write(session: Session, *, rid: str, subject: str, attester: str) -> None:
    """One review through the write path (attester lock, supersession, insert, the subject's aggregate)."""
    row = ReviewRow(
        id=rid, subject=subject, subject_normalized=subject, did_address="0x" + "00" * 20, attester=attester,
        rating_value=5, data_hex="0x", review_time=NOW, source="chain", verified_purchase=True, evidence="verified",
        created_at=NOW,
    )  # fmt: skip
    store_judged_review(
        session, attester=attester, subject_normalized=subject, review_time=NOW, candidate_receipts=(),
        judge=lambda _placement: JudgedRows(review=row, proofs=[], receipt_keys=()),
        aggregates=apply_review_change, now=NOW,
    )  # fmt: skip


def _with_lock_timeout(session: Session, ms: int) -> None:
    session.execute(text(f"SET LOCAL lock_timeout = '{int(ms)}ms'"))  # this transaction only


def test_writers_of_different_subjects_do_not_wait_on_each_other(pg_engine: Engine) -> None:
    # Both subjects already have reviews (their aggregate rows exist), as in steady state; a third is new.
    with Session(pg_engine) as s:
        _write(s, rid="seed-a", subject="did:web:a.example", attester="0x" + "01" * 20)
        _write(s, rid="seed-b", subject="did:web:b.example", attester="0x" + "02" * 20)
        s.commit()
    with Session(pg_engine) as first, Session(pg_engine) as second, Session(pg_engine) as third:
        _write(first, rid="a", subject="did:web:a.example", attester="0x" + "aa" * 20)  # open: holds its locks
        _with_lock_timeout(second, 2000)
        _write(second, rid="b", subject="did:web:b.example", attester="0x" + "bb" * 20)
        second.commit()  # would raise LockNotAvailable had it waited on a row the first transaction holds
        _with_lock_timeout(third, 2000)
        _write(third, rid="c", subject="did:web:c.example", attester="0x" + "cc" * 20)
        third.commit()
        first.commit()
    with Session(pg_engine) as s:
        assert {r.id for r in s.exec(select(ReviewRow))} == {"seed-a", "seed-b", "a", "b", "c"}
    assert global_aggregate(engine=pg_engine, wait=True, max_age=0.0).live_count() == 5


def test_writers_of_one_subject_do_wait_on_its_row(pg_engine: Engine) -> None:
    with Session(pg_engine) as s:
        _write(s, rid="seed", subject="did:web:a.example", attester="0x" + "01" * 20)
        s.commit()
    with Session(pg_engine) as first, Session(pg_engine) as second:
        _write(first, rid="a1", subject="did:web:a.example", attester="0x" + "aa" * 20)
        _with_lock_timeout(second, 200)
        with pytest.raises(OperationalError, match="lock timeout"):
            _write(second, rid="a2", subject="did:web:a.example", attester="0x" + "bb" * 20)
        second.rollback()
        first.commit()
