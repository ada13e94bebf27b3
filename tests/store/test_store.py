"""Store: migrations match the models, receipt claims, keyset pagination — on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from service.store.engine import make_engine, session_scope
from service.store.migrate import include_name, upgrade
from service.store.reviews import (
    ReceiptAlreadyClaimed,
    claim_receipts,
    decode_cursor,
    list_reviews,
    live_review_for,
    receipt_holder,
)
from service.store.tables import ReviewRow
from tests.support.db import fresh_database_url, migrated_engine

engine = migrated_engine  # a fresh, migrated database per test


def _review(
    rid: str, *, attester: str = "0x" + "aa" * 20, t: int = 1000, subject: str = "did:web:a.example"
) -> ReviewRow:
    return ReviewRow(
        id=rid, subject=subject, subject_normalized=subject, did_address="0x" + "00" * 20, attester=attester,
        rating_value=5, data_hex="0x", review_time=t, source="api", created_at=t,
    )  # fmt: skip


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})  # task queue: not modelled
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_upgrade_is_idempotent(engine: Engine) -> None:
    upgrade(engine=engine)
    upgrade(engine=engine)


def test_receipt_backs_one_live_review(engine: Engine) -> None:
    with session_scope(engine) as s:
        first = _review("r1")
        s.add(first)
        s.flush()
        claim_receipts(s, replay_keys=["0xabc"], review=first, superseding=None)
    with session_scope(engine) as s:
        other = _review("r2", attester="0x" + "bb" * 20)
        s.add(other)
        s.flush()
        with pytest.raises(ReceiptAlreadyClaimed) as info:
            claim_receipts(s, replay_keys=["0xabc"], review=other, superseding=None)
        assert info.value.review_id == "r1"


def test_superseding_review_takes_over_the_claim(engine: Engine) -> None:
    with session_scope(engine) as s:
        first = _review("r1", t=1000)
        s.add(first)
        s.flush()
        claim_receipts(s, replay_keys=["0xabc"], review=first, superseding=None)
    with session_scope(engine) as s:
        newer = _review("r2", t=2000)
        old = live_review_for(s, attester=newer.attester, subject_normalized=newer.subject_normalized)
        assert old is not None
        assert old.id == "r1"
        old.superseded_by = "r2"  # superseded first: the unique index allows one live review per attester+subject
        s.add(old)
        s.flush()
        s.add(newer)
        s.flush()
        claim_receipts(s, replay_keys=["0xabc"], review=newer, superseding="r1")
    with session_scope(engine) as s:
        assert receipt_holder(s, replay_key="0xabc") == "r2"
        assert live_review_for(s, attester="0x" + "aa" * 20, subject_normalized="did:web:a.example").id == "r2"


def test_keyset_pagination_visits_every_row_once(engine: Engine) -> None:
    with session_scope(engine) as s:
        for i in range(23):
            s.add(_review(f"r{i:02d}", attester=f"0x{i:040x}", t=1000 + i // 3))
    seen: list[str] = []
    cursor = None
    with session_scope(engine) as s:
        while True:
            page = list_reviews(
                s, subject_normalized="did:web:a.example", verified=None, include_superseded=False,
                cursor=cursor, limit=5,
            )  # fmt: skip
            seen += [r.id for r in page.rows]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert sorted(seen) == sorted(f"r{i:02d}" for i in range(23))
    assert len(seen) == len(set(seen))
    times = [int(1000 + int(r[1:]) // 3) for r in seen]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize("cursor", ["", "not-base64!", "WzEsMiwzXQ", "eyJhIjoxfQ"])
def test_foreign_cursor_is_rejected(cursor: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError subclass (JSON, base64)
        decode_cursor(cursor)


def test_migration_0002_repairs_duplicate_live_reviews_then_enforces_one(tmp_path: Path) -> None:
    """Stores written before 0002 may hold several live reviews of one attester about one subject: the latest stays
    live, the others are superseded by it; afterwards the database refuses a second live review."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    with fresh_database_url(tmp_path) as url:
        eng = make_engine(url=url)
        try:
            upgrade(engine=eng, revision="0001")
            insert = text(
                "INSERT INTO reviews (id, subject, subject_normalized, did_address, attester, version, rating_value, "
                "review_body, screenshot_urls, proofs_json, data_hex, review_time, source, verified_purchase, "
                "evidence, created_at) VALUES (:id, 's', 's', '0x', :a, '', 5, '', '[]', '[]', '0x', :t, 'api', "
                "false, 'none', :t)"
            )
            with eng.begin() as conn:
                for rid, attester, t in [("d1", "0xaa", 10), ("d2", "0xaa", 30), ("d3", "0xaa", 20), ("o1", "0xbb", 5)]:
                    conn.execute(insert, {"id": rid, "a": attester, "t": t})
            upgrade(engine=eng)
            with eng.connect() as conn:
                rows = dict(conn.execute(text("SELECT id, superseded_by FROM reviews")).all())
            assert rows == {"d1": "d2", "d2": None, "d3": "d2", "o1": None}
            with pytest.raises(IntegrityError), eng.begin() as conn:
                conn.execute(insert, {"id": "d4", "a": "0xaa", "t": 40})
        finally:
            eng.dispose()
