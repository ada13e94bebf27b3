"""PostgreSQL: the publisher's claim locks its outbox rows ``FOR UPDATE SKIP LOCKED`` until it has recorded what it
decided about them, so two claimers never wait for each other and never take the same row."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from eth_account import Account
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from service.domain import Reason
from service.store.migrate import upgrade
from service.workflows.outbox import SqlOutbox
from tests.support.db import fresh_postgres_url

pytestmark = pytest.mark.postgres

NOW = 1_800_000_000


@pytest.fixture
def engine() -> Iterator[Engine]:
    with fresh_postgres_url(prefix="omatrust_claim") as url:
        # a claim that waited for a row lock would fail after 3 s instead of hanging the test
        eng = create_engine(url, connect_args={"options": "-c lock_timeout=3000"}, pool_size=5)
        upgrade(engine=eng)
        yield eng
        eng.dispose()


def _seed(engine: Engine, rows: list[dict[str, object]]) -> list[int]:
    """Insert outbox rows (their reviews are not needed here: foreign keys off for this connection)."""
    ids = []
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for k, row in enumerate(rows):
            ids.append(int(conn.execute(text(
                "INSERT INTO outbox (content_key, review_id, attester, recipient, data_hex, deadline, nonce, "
                "signature, state, attempts, next_attempt_at, created_at, updated_at) VALUES (:key, :review, "
                ":attester, :recipient, :data, :deadline, :nonce, :sig, 'pending', 0, 0, 0, 0) RETURNING id"),
                {"key": f"0x{k:064x}", "review": f"r{k}", **row}).scalar_one()))  # fmt: skip
    return ids


def _dummy(k: int) -> dict[str, object]:
    account = Account.from_key((k + 1).to_bytes(32, "big"))
    return {"attester": account.address, "recipient": account.address, "data": "0x" + "00" * 32,
            "deadline": NOW + 3600, "nonce": "0", "sig": "0x" + "11" * 64 + "1b"}  # fmt: skip


def _states(engine: Engine) -> dict[int, tuple[str, str | None]]:
    with engine.connect() as conn:
        return {int(i): (s, h) for i, s, h in conn.execute(text("SELECT id, state, tx_hash FROM outbox"))}


def test_two_claims_never_block_on_or_share_a_row(engine: Engine) -> None:
    ids = _seed(engine, [_dummy(k) for k in range(10)])
    outbox = SqlOutbox(engine=engine)
    with outbox.claim(limit=4, now=NOW) as first:
        assert [i.id for i in first.items] == ids[:4]
        started = time.monotonic()
        with outbox.claim(limit=4, now=NOW) as second:  # same thread: a lock wait could never end (lock_timeout)
            assert [i.id for i in second.items] == ids[4:8]
            second.mark_submitted(item_ids=ids[4:8], tx_hash="0x" + "bb" * 32, submitted_block=7, now=NOW)
        assert time.monotonic() - started < 2.0
        # rows 1-4 are still held; only 9 and 10 are left for a third claimer
        with outbox.claim(limit=10, now=NOW) as third:
            assert [i.id for i in third.items] == ids[8:]
        first.mark_submitted(item_ids=ids[:2], tx_hash="0x" + "aa" * 32, submitted_block=7, now=NOW)
        first.mark_failed(item_id=ids[2], reason=Reason.DELEGATION_NONCE, detail="test", now=NOW)
    states = _states(engine)
    assert [states[i] for i in ids[:4]] == [("submitted", "0x" + "aa" * 32)] * 2 + [("failed", None), ("pending", None)]
    assert [states[i] for i in ids[4:8]] == [("submitted", "0x" + "bb" * 32)] * 4
    with outbox.claim(limit=10, now=NOW) as again:  # committed and unlocked: the undecided rows are claimable again
        assert [i.id for i in again.items] == [ids[3], *ids[8:]]


def test_claims_from_two_threads_at_once_are_disjoint(engine: Engine) -> None:
    ids = _seed(engine, [_dummy(k) for k in range(12)])
    outbox = SqlOutbox(engine=engine)
    both_hold = threading.Barrier(2, timeout=10)
    seen: dict[str, list[int]] = {}

    def claimer(name: str) -> None:
        with outbox.claim(limit=6, now=NOW) as claim:
            seen[name] = [i.id for i in claim.items]
            both_hold.wait()  # both transactions hold their rows at the same time
            claim.mark_submitted(item_ids=seen[name], tx_hash="0x" + name * 32, submitted_block=1, now=NOW)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in ("aa", "bb")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(seen["aa"] + seen["bb"]) == ids
    assert set(seen["aa"]).isdisjoint(seen["bb"])
    assert len(seen["aa"]) == len(seen["bb"]) == 6
    assert {s for s, _ in _states(engine).values()} == {"submitted"}


def test_an_exception_inside_a_claim_keeps_nothing_and_frees_the_rows(engine: Engine) -> None:
    ids = _seed(engine, [_dummy(k) for k in range(3)])
    outbox = SqlOutbox(engine=engine)

    def sign_and_fail() -> None:
        with outbox.claim(limit=3, now=NOW) as claim:
            claim.mark_submitted(item_ids=ids, tx_hash="0x" + "cc" * 32, submitted_block=1, now=NOW)
            raise RuntimeError("node went away while signing")

    with pytest.raises(RuntimeError):
        sign_and_fail()
    assert {s for s, _ in _states(engine).values()} == {"pending"}
    with outbox.claim(limit=3, now=NOW) as claim:
        assert [i.id for i in claim.items] == ids
