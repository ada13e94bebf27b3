"""The write path's building blocks: rows built without SQLModel's constructor (``new_row``), and writes that ride
along with a review's rows (``insert_rows(riders=…)``): the same rows as the ORM writes, on SQLite and PostgreSQL; on
PostgreSQL one statement for everything, a publish job included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from service.store.aggregates import lock_state, write_state
from service.store.batch import Rider, insert_rows, new_review_row, new_row, proof_values, review_values
from service.store.engine import session_scope
from service.store.jobqueue import PUBLISH_QUEUE, PUBLISH_TASK, publish_job, publish_lock
from service.store.outbox import outbox_values
from service.store.tables import OutboxRow, ProofRow, ReviewRow, SubjectAggregateRow
from tests.support.db import migrated_engine, migrated_postgres_engine

engine = migrated_engine  # a fresh, migrated database per test (SQLite, or PostgreSQL in the PostgreSQL pass)

SUBJECT = "did:web:shop.example"


def _review_values(rid: str) -> dict[str, Any]:
    return dict(
        id=rid, subject=SUBJECT, subject_normalized=SUBJECT, did_address="0x" + "11" * 20,
        attester="0x" + rid.encode().hex().rjust(40, "a"),  # one live review per (attester, subject)
        version="", rating_value=4, review_body="fine", screenshot_urls=["https://shop.example/a.png"],
        proofs_json=['{"proofType":"x402-receipt"}'], data_hex="0x00", review_time=1000, source="api",
        verified_purchase=True, evidence="verified", created_at=1000, superseded_by=None, attestation_uid=None,
        problem=None, chain_ref=None, attestation_block=None,
    )  # fmt: skip


def _proof_values(rid: str, *, payment: dict[str, Any] | None = None) -> dict[str, Any]:
    return dict(
        review_id=rid, position=0, proof_type="x402-receipt", status="verified", reason=None, kind="receipt",
        format="eip712", signature_valid=True, signer="0x" + "bb" * 20, tier="did-document",
        replay_key="0x" + "cc" * 32, bound=True, issued_at=990, checked_at=1000, evidence_hash="ab" * 32, detail="",
        payment=payment, payment_status=payment["status"] if payment else None,
    )  # fmt: skip


def _outbox_values(rid: str) -> dict[str, Any]:
    return dict(content_key="0x" + rid.ljust(64, "0"), review_id=rid, attester="0x" + "aa" * 20,
                recipient="0x" + "11" * 20, data_hex="0x00", deadline=2000, nonce="0", signature="0x" + "dd" * 65,
                created_at=1000, updated_at=1000)  # fmt: skip


def _fields(row: SQLModel) -> dict[str, Any]:
    return {name: getattr(row, name) for name in type(row).model_fields}


ROWS = [(ReviewRow, _review_values("r1")), (ProofRow, _proof_values("r1", payment={"status": "settled"})),
        (OutboxRow, _outbox_values("r1"))]  # fmt: skip


@pytest.mark.parametrize(("model", "values"), ROWS)
def test_new_row_is_the_row_the_model_constructor_builds(model: type[SQLModel], values: dict[str, Any]) -> None:
    assert _fields(new_row(model, **values)) == _fields(model(**values))


def test_new_row_refuses_unknown_and_missing_fields() -> None:
    with pytest.raises(ValueError, match="unknown \\['colour'\\]"):
        new_row(ProofRow, **_proof_values("r1"), colour="red")
    missing = _proof_values("r1")
    del missing["checked_at"]
    with pytest.raises(ValueError, match="missing \\['checked_at'\\]"):
        new_row(ProofRow, **missing)
    with pytest.raises(ValueError, match="columns missing or unknown"):  # a review names every column
        new_review_row(**{k: v for k, v in _review_values("r1").items() if k != "problem"})


def _raw(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def _as_text(engine: Engine, table: Any, *, where: str, skip: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every column but ``skip`` of the rows ``where`` selects, each as the database's text of it (so JSON ``null``
    and SQL NULL differ), ordered by those columns."""
    cols = [c.name for c in table.columns if c.name not in skip]
    sql = f"SELECT {', '.join(f'CAST({c} AS TEXT)' for c in cols)} FROM {table.name} WHERE {where}"
    return sorted((dict(zip(cols, row, strict=True)) for row in _raw(engine, sql)), key=repr)


def test_insert_rows_writes_what_the_orm_writes(engine: Engine) -> None:
    """The same review, proofs (one with a payment, one without) and outbox row through the ORM and through
    ``insert_rows`` (on PostgreSQL: the one-statement JSON path): every column equal as the database holds it."""
    proofs = {rid: [_proof_values(rid), {**_proof_values(rid, payment={"status": "settled", "amount": "10",
                                                                        "note": "é \u2603 x" * 50}), "position": 1}]
              for rid in ("orm", "ins")}  # fmt: skip
    with session_scope(engine) as session:
        session.add(ReviewRow(**_review_values("orm")))
        session.flush()
        session.add_all([ProofRow(**p) for p in proofs["orm"]] + [OutboxRow(**_outbox_values("orm"))])
    with session_scope(engine) as session:
        insert_rows(session, tables=[
            (ReviewRow.__table__, [review_values(new_review_row(**_review_values("ins")))]),
            (ProofRow.__table__, [proof_values(new_row(ProofRow, **p)) for p in proofs["ins"]]),
            (OutboxRow.__table__, [outbox_values(new_row(OutboxRow, **_outbox_values("ins")))]),
        ])  # fmt: skip
    for table, key, skip in [(ReviewRow.__table__, "id", ("id", "attester")),
                             (ProofRow.__table__, "review_id", ("id", "review_id")),
                             (OutboxRow.__table__, "review_id", ("id", "review_id", "content_key"))]:  # fmt: skip
        by_orm = _as_text(engine, table, where=f"{key} = 'orm'", skip=skip)
        by_insert = _as_text(engine, table, where=f"{key} = 'ins'", skip=skip)
        assert by_insert == by_orm, table.name
        assert by_insert, table.name
    payments = [r["payment"] for r in _as_text(engine, ProofRow.__table__, where="review_id = 'ins'", skip=())]
    assert sorted(json.loads(p) is None for p in payments) == [False, True]  # JSON null, not SQL NULL
    history = _as_text(engine, OutboxRow.__table__, where="review_id = 'ins'", skip=())[0]["history"]
    assert json.loads(history) is None


def _aggregate_rider(session: Any, *, count: int) -> list[Rider]:
    lock_state(session, subject_normalized=SUBJECT, now=1000)
    riders: list[Rider] = []
    write_state(session, subject_normalized=SUBJECT, state={"marker": count}, review_count=count, now=1001,
                riders=riders)  # fmt: skip
    return riders


def test_riders_run_with_the_rows(engine: Engine) -> None:
    with session_scope(engine) as session:
        riders = _aggregate_rider(session, count=7)
        assert session.get(SubjectAggregateRow, SUBJECT).review_count == 0  # type: ignore[union-attr]  # deferred
        insert_rows(session, tables=[
            (ReviewRow.__table__, [review_values(new_review_row(**_review_values("r1")))]),
            (ProofRow.__table__, [proof_values(new_row(ProofRow, **_proof_values("r1")))]),
        ], riders=riders)  # fmt: skip
    with session_scope(engine) as session:
        agg = session.get(SubjectAggregateRow, SUBJECT)
        assert agg is not None
        assert (agg.review_count, agg.state, agg.updated_at) == (7, {"marker": 7}, 1001)
    assert _raw(engine, "SELECT review_id FROM proofs") == [("r1",)]


def test_riders_sharing_a_parameter_are_refused(engine: Engine) -> None:
    with session_scope(engine) as session:
        riders = _aggregate_rider(session, count=1) * 2
        with pytest.raises(ValueError, match="riders share bound parameters"):
            insert_rows(session, tables=[], riders=riders)


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    with migrated_postgres_engine(prefix="omatrust_rows") as eng:
        yield eng


@pytest.mark.postgres
def test_postgres_writes_a_review_its_aggregate_and_its_job_in_one_statement(pg_engine: Engine) -> None:
    statements: list[str] = []
    with session_scope(pg_engine) as session:
        riders = [*_aggregate_rider(session, count=3), publish_job(relayer="0x" + "EE" * 20)]
        event.listen(pg_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        insert_rows(session, tables=[
            (ReviewRow.__table__, [review_values(new_review_row(**_review_values("r1")))]),
            (ProofRow.__table__, [proof_values(new_row(ProofRow, **_proof_values("r1")))]),
            (OutboxRow.__table__, [outbox_values(new_row(OutboxRow, **_outbox_values("r1")))]),
        ], riders=riders)  # fmt: skip
    assert len(statements) == 1
    lock = publish_lock("0x" + "ee" * 20)
    jobs = _raw(pg_engine, "SELECT queue_name, task_name, lock, queueing_lock, args::text, status::text "
                           "FROM procrastinate_jobs")  # fmt: skip
    assert jobs == [(PUBLISH_QUEUE, PUBLISH_TASK, lock, lock, json.dumps({"relayer": "0x" + "ee" * 20}), "todo")]
    assert _raw(pg_engine, "SELECT review_count FROM subject_aggregates") == [(3,)]
    assert _raw(pg_engine, "SELECT review_id, state FROM outbox") == [("r1", "pending")]
    # a second review while that job waits: its rows are written, the job is not queued twice (ON CONFLICT)
    with session_scope(pg_engine) as session:
        insert_rows(session, tables=[
            (ReviewRow.__table__, [review_values(new_review_row(**_review_values("r2")))]),
        ], riders=[publish_job(relayer="0x" + "ee" * 20)])  # fmt: skip
    assert _raw(pg_engine, "SELECT count(*) FROM procrastinate_jobs") == [(1,)]
    assert _raw(pg_engine, "SELECT count(*) FROM reviews") == [(2,)]
