"""The OutboxRepository contract, run against the in-memory reference and a SQL (sqlite3) implementation.
The lead's SQLModel implementation can reuse ``check_outbox_contract``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from service.chain.delegation import DelegatedRequest
from service.chain.outbox import InMemoryOutbox, OutboxRepository
from service.domain import Reason

from .sqlite_outbox import SqliteOutbox

SIGNER = Account.from_key(b"\x22" * 32)


def _request(nonce: int) -> DelegatedRequest:
    sig = bytes(Account.unsafe_sign_hash(b"\x01" * 32, SIGNER.key).signature)
    return DelegatedRequest(attester=SIGNER.address, data=b"d%d" % nonce, recipient="0x" + "22" * 20,
                            deadline=10**9, nonce=nonce, signature=sig)


def check_outbox_contract(outbox: Any, enqueue: Callable[[DelegatedRequest, str], int]) -> None:
    repo: OutboxRepository = outbox  # structural typing: must satisfy the Protocol
    a, b, c = (enqueue(_request(n), f"k{n}") for n in range(3))
    assert enqueue(_request(0), "k0") == a  # idempotent on the content key
    assert [i.id for i in repo.claim_pending(limit=10, now=0)] == [a, b, c]  # oldest first
    assert [i.id for i in repo.claim_pending(limit=2, now=0)] == [a, b]
    assert repo.claim_pending(limit=10, now=0)[0].request == _request(0)  # round-trips the request

    repo.mark_submitted(item_ids=[a, b], tx_hash="0xaa", submitted_block=7, now=1)
    assert [i.id for i in repo.claim_pending(limit=10, now=1)] == [c]
    sub = repo.list_submitted()
    assert [(i.id, i.tx_hash, i.attempts, i.submitted_block) for i in sub] == [(a, "0xaa", 1, 7), (b, "0xaa", 1, 7)]

    repo.release(item_ids=[b], retry_at=100, detail="unknown tx", now=2)
    assert [i.id for i in repo.claim_pending(limit=10, now=99)] == [c]  # not before its retry time
    again = next(i for i in repo.claim_pending(limit=10, now=100) if i.id == b)
    assert (again.attempts, again.tx_hash, again.submitted_block) == (1, None, 7)
    repo.mark_submitted(item_ids=[b], tx_hash="0xbb", submitted_block=9, now=3)
    assert [(i.id, i.attempts, i.submitted_block) for i in repo.list_submitted() if i.id == b] == [(b, 2, 7)]

    repo.mark_confirmed(item_id=a, uid="0x" + "11" * 32, tx_hash="0xaa", block_number=8, now=4)
    repo.mark_failed(item_id=a, reason=Reason.TX_REVERTED, detail="late", now=5)  # terminal: ignored
    repo.release(item_ids=[a], retry_at=0, detail="late", now=5)  # terminal: ignored
    repo.mark_failed(item_id=c, reason=Reason.DELEGATION_EXPIRED, detail="deadline", now=6)
    repo.mark_confirmed(item_id=b, uid="0x" + "22" * 32, tx_hash="0xother", block_number=9, now=7)
    assert repo.list_submitted() == []
    assert repo.claim_pending(limit=10, now=10**6) == []


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_outbox_contract(kind: str, tmp_path: Path) -> None:
    outbox: InMemoryOutbox | SqliteOutbox = InMemoryOutbox() if kind == "memory" else SqliteOutbox(tmp_path / "o.db")
    check_outbox_contract(outbox, lambda r, k: outbox.enqueue(request=r, key=k))
    if isinstance(outbox, InMemoryOutbox):
        states = {r.item.id: (r.state, r.uid, r.last_error) for r in outbox.records()}
        assert states[1] == ("confirmed", "0x" + "11" * 32, None)
        assert states[3][0] == "failed"
        assert states[3][2] == "delegation-expired: deadline"
    else:
        assert outbox.row(1)["state"] == "confirmed"
        assert outbox.row(3)["last_error"] == "delegation-expired: deadline"
        assert outbox.row(2)["tx_hash"] == "0xother"
