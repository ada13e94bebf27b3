"""Store: migrations match the models, receipt claims, keyset pagination — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from service.store.engine import make_engine, session_scope
from service.store.migrate import upgrade
from service.store.reviews import (
    ReceiptAlreadyClaimed,
    claim_receipts,
    decode_cursor,
    list_reviews,
    live_review_for,
    receipt_holder,
)
from service.store.tables import ReviewRow
from tests.support.db import fresh_database_url


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with fresh_database_url(tmp_path) as url:
        eng = make_engine(url=url)
        upgrade(engine=eng)
        yield eng
        eng.dispose()


def _review(
    rid: str, *, attester: str = "0x" + "aa" * 20, t: int = 1000, subject: str = "did:web:a.example"
) -> ReviewRow:
    return ReviewRow(
        id=rid, subject=subject, subject_normalized=subject, did_address="0x" + "00" * 20, attester=attester,
        rating_value=5, data_hex="0x", review_time=t, source="api", created_at=t,
    )  # fmt: skip


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
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
        s.add(newer)
        s.flush()
        old = live_review_for(s, attester=newer.attester, subject_normalized=newer.subject_normalized)
        assert old is not None
        assert old.id == "r1"
        old.superseded_by = "r2"
        s.add(old)
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
