"""A sync chunk written in bulk (``ChunkWriter``: facts read once, rows inserted with executemany) stores exactly
the rows the per-review path stores: reviews, supersessions, receipt claims, proofs and aggregates — on a chunk with
supersessions inside the chunk and of stored reviews, late arrivals (stored already superseded) and replayed
receipts. Runs on SQLite and, with ``OMATRUST_TEST_DB=postgres``, on PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from service.chain.codec import encode_review
from service.chain.indexer import IndexedReview
from service.dids import did_address
from service.domain import Review
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.store.tables import ProofRow, ReceiptClaimRow, ReviewRow, SubjectAggregateRow
from service.workflows.runtime import Runtime
from service.workflows.sync import _judge, _write_chunk
from tests.support.db import fresh_database_url
from tests.workflows.conftest import BatchEnv


@pytest.fixture
def second_engine(tmp_path: Path) -> Iterator[Engine]:
    (tmp_path / "second").mkdir()
    with fresh_database_url(tmp_path / "second") as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        yield engine
        engine.dispose()


class _Chain:
    """Attestations as the indexer hands them to sync (uids and blocks made up; nothing here needs a chain)."""

    def __init__(self, env: BatchEnv) -> None:
        self.env = env
        self.n = 0

    def review(self, *, attester: str, t: int, rating: int = 5, proofs: tuple[dict[str, Any], ...] = (),
               subject: str | None = None, garbage: bool = False) -> IndexedReview:  # fmt: skip
        self.n += 1
        subject = subject or self.env.merchant.did
        review = Review(subject=subject, version="", rating_value=rating, review_body=f"review {self.n}",
                        screenshot_urls=(), proofs=tuple(json.dumps(p, separators=(",", ":")) for p in proofs))
        return IndexedReview(
            uid="0x" + f"{self.n:064x}", attester=attester, recipient=did_address(subject), time=t,
            block_number=10 + self.n, tx_hash="0x" + f"{self.n:064x}", log_index=0,
            review=None if garbage else review, data=encode_review(review=review), block_hash="0x" + "ab" * 32,
        )  # fmt: skip


def _snapshot(engine: Engine) -> dict[str, Any]:
    """Everything the chunk wrote, with review ids replaced by attestation UIDs (ids are random per run)."""
    with Session(engine) as s:
        reviews = list(s.exec(select(ReviewRow)))
        uid = {r.id: r.attestation_uid for r in reviews}
        rows = {
            r.attestation_uid: {**r.model_dump(exclude={"id"}), "superseded_by": uid.get(r.superseded_by or "")}
            for r in reviews
        }
        claims = {c.replay_key: (uid[c.review_id], c.attester, c.subject_normalized)
                  for c in s.exec(select(ReceiptClaimRow))}  # fmt: skip
        proofs = sorted(
            (uid[p.review_id], p.position, json.dumps(p.model_dump(exclude={"id", "review_id"}), sort_keys=True))
            for p in s.exec(select(ProofRow))
        )
        aggregates = {a.subject_normalized: (a.state, a.review_count) for a in s.exec(select(SubjectAggregateRow))}
    return {"reviews": rows, "claims": claims, "proofs": proofs, "aggregates": aggregates}


def test_bulk_chunk_stores_exactly_what_the_per_review_path_stores(batch_env: BatchEnv, second_engine: Engine) -> None:
    env, m = batch_env, batch_env.merchant
    now = int(env.clock())
    base = now - 5000
    a, b, c, d = (Account.create().address for _ in range(4))
    chain = _Chain(env)

    def receipt(payer: str) -> dict[str, Any]:
        return m.receipt(payer=payer, issued_at=base - 600 - chain.n)

    ra, rb, rd = receipt(a), receipt(b), receipt(d)
    # Stored before the chunk: a's review holding receipt ra, b's newer review.
    stored = [chain.review(attester=a, t=base + 100, rating=2, proofs=(ra,)),
              chain.review(attester=b, t=base + 900, rating=4)]  # fmt: skip
    chunk = [
        chain.review(attester=a, t=base + 200, rating=5, proofs=(ra,)),  # supersedes the stored one, takes ra over
        chain.review(attester=b, t=base + 300, rating=1, proofs=(rb,)),  # arrives late: superseded, claims nothing
        chain.review(attester=a, t=base + 150, rating=3, proofs=(ra,)),  # late, and ra is replayed (a's live holds it)
        chain.review(attester=d, t=base + 100, rating=2, proofs=(rd,)),  # d, twice in the chunk: first live ...
        chain.review(attester=d, t=base + 400, rating=5, proofs=(rd,)),  # ... then superseded by this one
        chain.review(attester=d, t=base + 250, rating=4, proofs=(rd,)),  # late within the chunk: rd replayed
        chain.review(attester=c, t=base + 500, rating=5, proofs=(ra,)),  # someone else's receipt: not bound
        chain.review(attester=c, t=base + 600, rating=7, garbage=True),  # undecodable: a reject
        chain.review(attester=c, t=base + 700, rating=4, subject="did:web:other.example"),
    ]
    runtimes = {"bulk": env.rt, "one-by-one": dataclasses.replace(env.rt, engine=second_engine)}
    snapshots = {}
    for mode, rt in runtimes.items():
        _chunk(rt, stored, now=now, bulk=False, last_block=100)
        counts = _chunk(rt, chunk, now=now, bulk=mode == "bulk", last_block=200)
        assert (counts.stored, counts.rejected, counts.superseded_on_arrival, counts.replayed) == (8, 1, 3, 2), mode
        snapshots[mode] = _snapshot(rt.engine)

    bulk, single = snapshots["bulk"], snapshots["one-by-one"]
    assert bulk == single
    # and the rules did apply (the comparison above would also pass if both paths were wrong the same way)
    rows = bulk["reviews"]
    uid = [f.uid for f in stored + chunk]
    assert rows[uid[0]]["superseded_by"] == uid[2]  # stored a superseded by the chunk's newer a
    assert rows[uid[3]]["superseded_by"] == uid[1]  # b's late review
    assert rows[uid[4]]["superseded_by"] == uid[2]  # a's late review
    assert rows[uid[5]]["superseded_by"] == uid[6]  # d's first, superseded inside the chunk
    assert rows[uid[7]]["superseded_by"] == uid[6]  # d's late one
    assert [u for u in uid if u in rows and rows[u]["superseded_by"] is None] == [uid[1], uid[2], uid[6], uid[8],
                                                                                   uid[10]]  # fmt: skip
    holders = {key: holder for key, (holder, _, _) in bulk["claims"].items()}
    assert sorted(holders.values()) == sorted([uid[2], uid[6]])
    assert rows[uid[4]]["verified_purchase"] is False
    assert rows[uid[2]]["verified_purchase"] is True
    replayed = [p for p in bulk["proofs"] if json.loads(p[2])["reason"] == "receipt-replayed"]
    assert sorted(p[0] for p in replayed) == sorted([uid[4], uid[7]])


def _chunk(rt: Runtime, found: list[IndexedReview], *, now: int, bulk: bool, last_block: int) -> Any:
    judged = [_judge(rt, f, now) for f in found]
    return _write_chunk(rt=rt, judged=judged, now=now, name="user-reviews", last_block=last_block, hashes={},
                        end_hash=None, bulk=bulk)  # fmt: skip
