"""The submission fast path's parts: nonce knowledge without a chain round-trip, the relayer partition, the
multi-process guard of ``omatrust serve``, and the hand-packed EIP-712 digest (eth-account is the reference)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from service.chain.delegation import DelegatedRequest, EasDomain, attest_digest, attest_typed_data
from service.cli.serve import check_processes
from service.domain import USER_REVIEW_SCHEMA_UID, Reason
from service.errors import ChainUnavailable, MalformedInput
from service.store.engine import make_engine, session_scope
from service.store.jobqueue import relayer_slot, slot_digits
from service.store.migrate import upgrade
from service.store.outbox import OutboxFacts
from service.store.tables import OutboxRow, ReviewRow
from service.workflows.nonces import NonceBook, chain_nonce_for, nonce_to_check
from service.workflows.runtime import Runtime

DOMAIN = EasDomain(name="EAS", version="1.4.0", chain_id=31337,
                   verifying_contract="0x4200000000000000000000000000000000000021")  # fmt: skip
ATTESTER = "0x" + "ab" * 20


class CountingChain:
    """Unit-level stand-in for EasClient.get_nonce (the real path is covered by tests/scale/test_publish_workers)."""

    def __init__(self, nonce: int) -> None:
        self.nonce, self.calls, self.down = nonce, 0, False

    def get_nonce(self, *, attester: str) -> int:
        self.calls += 1
        if self.down:
            raise ChainUnavailable(Reason.RPC_FAILED, "the node is down")
        return self.nonce


def _runtime(tmp_path: Path, chain: CountingChain) -> Runtime:
    engine = make_engine(url=f"sqlite:///{tmp_path / 'n.db'}")
    upgrade(engine=engine)
    return Runtime(engine=engine, eas=chain, resolver=None, controllers=None)  # type: ignore[arg-type]


def _outbox(rt: Runtime, *, nonce: int, state: str) -> None:
    with session_scope(rt.engine) as session:
        rid = secrets.token_hex(8)
        subject = f"did:web:{rid}.example"  # one live review per (attester, subject)
        session.add(ReviewRow(id=rid, subject=subject, subject_normalized=subject,
                              did_address="0x" + "00" * 20, attester=ATTESTER, rating_value=5, data_hex="0x",
                              review_time=1, source="api", created_at=1))  # fmt: skip
        session.flush()
        session.add(OutboxRow(content_key="0x" + secrets.token_hex(32), review_id=rid, attester=ATTESTER,
                              recipient="0x" + "00" * 20, data_hex="0x", deadline=2, nonce=str(nonce),
                              signature="0x", state=state, created_at=1, updated_at=1))  # fmt: skip


def test_next_nonce_from_the_outbox_after_one_chain_read_or_with_the_chain_down(tmp_path: Path) -> None:
    chain = CountingChain(nonce=0)
    rt = _runtime(tmp_path, chain)
    _outbox(rt, nonce=0, state="confirmed")
    _outbox(rt, nonce=1, state="pending")
    first = chain_nonce_for(rt=rt, attester=ATTESTER, claimed=2)  # unknown to this process: the chain is read
    assert (first.expected, first.chain, chain.calls) == (2, 0, 1)
    assert first.facts is not None  # the chain (0) differs: the outbox explains it
    assert first.facts.own_next == 2
    again = chain_nonce_for(rt=rt, attester=ATTESTER, claimed=2)  # a recent read + the outbox: no chain read
    assert (again.expected, again.chain, chain.calls) == (2, 2, 1)
    # any other claim reads the chain: a stale view never refuses a right nonce by itself
    assert chain_nonce_for(rt=rt, attester=ATTESTER, claimed=7).expected == 2
    assert chain.calls == 2
    rt.nonces.clear()
    chain.down = True  # the outbox still tells the next nonce; nothing else is accepted without the chain
    assert chain_nonce_for(rt=rt, attester=ATTESTER, claimed=2).expected == 2
    with pytest.raises(ChainUnavailable):
        chain_nonce_for(rt=rt, attester=ATTESTER, claimed=3)
    rt.nonces.put(ATTESTER, 7)  # a recent read says 7: the attester spent more elsewhere; our outbox's 2 is stale
    with pytest.raises(ChainUnavailable):
        chain_nonce_for(rt=rt, attester=ATTESTER, claimed=2)


def test_failed_requests_do_not_count_and_unknown_attesters_read_the_chain(tmp_path: Path) -> None:
    chain = CountingChain(nonce=3)
    rt = _runtime(tmp_path, chain)
    _outbox(rt, nonce=5, state="failed")
    assert chain_nonce_for(rt=rt, attester=ATTESTER, claimed=3).expected == 3
    assert chain.calls == 1
    assert chain_nonce_for(rt=rt, attester=ATTESTER, claimed=3).expected == 3  # a recent read is reused
    assert chain.calls == 1
    chain.nonce = 4  # the attester used the nonce elsewhere: their next claim (4) mismatches → re-read
    assert chain_nonce_for(rt=rt, attester=ATTESTER, claimed=4).expected == 4
    assert chain.calls == 2
    assert chain_nonce_for(rt=rt, attester=ATTESTER, claimed=6).expected == 4  # the failed request spent nothing


def test_the_outbox_is_read_only_when_no_chain_read_matches_the_claim(tmp_path: Path) -> None:
    chain = CountingChain(nonce=0)
    rt = _runtime(tmp_path, chain)
    reads: list[int] = []

    def outbox() -> OutboxFacts:
        reads.append(1)
        return OutboxFacts(known_review_id=None, own_next=1)

    fresh = nonce_to_check(rt=rt, attester=ATTESTER, claimed=0, outbox=outbox)  # a new reviewer: one chain read
    cached = nonce_to_check(rt=rt, attester=ATTESTER, claimed=0, outbox=outbox)  # a recent read matches
    assert (fresh.facts, cached.facts, len(reads), chain.calls) == (None, None, 0, 1)
    # our outbox holds the attester's request 0: the next one (1) is right by the outbox, without a chain read
    assert nonce_to_check(rt=rt, attester=ATTESTER, claimed=1, outbox=outbox).expected == 1
    assert (len(reads), chain.calls) == (1, 1)


def test_nonce_book_expires_and_stays_bounded() -> None:
    now = [0.0]
    book = NonceBook(ttl=10, size=2, clock=lambda: now[0])
    book.put("a", 1)
    book.put("b", 2)
    book.put("c", 3)  # evicts the least recently used
    assert (book.get("a"), book.get("b"), book.get("c")) == (None, 2, 3)
    now[0] = 11
    assert book.get("b") is None


def test_relayer_slots_partition_every_attester_once() -> None:
    for keys in (1, 2, 3, 4, 16):
        digits = [slot_digits(slot=i, relayers=keys) for i in range(keys)]
        if keys == 1:
            assert digits == [None]
            continue
        flat = [d for ds in digits for d in ds or ()]
        assert sorted(flat) == sorted("0123456789abcdef")
        for slot, ds in enumerate(digits):
            assert all(relayer_slot(attester="0x" + "1" * 39 + d, relayers=keys) == slot for d in ds or ())


@pytest.mark.parametrize(
    ("workers", "db", "rpc", "publisher", "ok"),
    [
        (1, "sqlite:///x.db", "", True, True),
        (2, "sqlite:///x.db", "http://n", False, False),
        (2, "postgresql+psycopg://h/db", "", False, False),
        (2, "postgresql+psycopg://h/db", "http://n", True, False),
        (2, "postgresql+psycopg://h/db", "http://n", False, True),
        (0, "postgresql+psycopg://h/db", "http://n", False, False),
    ],
)
def test_several_api_processes_need_a_shared_store_chain_and_no_publisher(
    workers: int, db: str, rpc: str, publisher: bool, ok: bool
) -> None:
    problem = check_processes(workers=workers, database_url=db, rpc_url=rpc, publisher_enabled=publisher)
    assert (problem is None) == ok


def _eth_account_digest(typed: dict[str, Any]) -> bytes:
    signable = encode_typed_data(full_message=typed)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=600), nonce=st.integers(0, 2**256 - 1), deadline=st.integers(0, 2**64 - 1),
       chain_id=st.integers(1, 2**64))  # fmt: skip
def test_hand_packed_digest_equals_eth_account(data: bytes, nonce: int, deadline: int, chain_id: int) -> None:
    domain = EasDomain(name="EAS", version="1.3.0", chain_id=chain_id, verifying_contract=DOMAIN.verifying_contract)
    attester, recipient = Account.from_key(b"\x22" * 32).address, "0x09A34a416806a7eba14B6B183369082602E8064B"
    kw: dict[str, Any] = {"domain": domain, "attester": attester, "recipient": recipient, "data": data,
                          "nonce": nonce, "deadline": deadline, "schema_uid": USER_REVIEW_SCHEMA_UID}  # fmt: skip
    assert attest_digest(**kw) == _eth_account_digest(attest_typed_data(**kw))


def test_digest_is_computed_once_per_domain_and_rejects_bad_fields() -> None:
    account = Account.from_key(b"\x33" * 32)
    typed = attest_typed_data(domain=DOMAIN, attester=account.address, recipient=account.address, data=b"x",
                              nonce=1, deadline=10**10, schema_uid=USER_REVIEW_SCHEMA_UID)  # fmt: skip
    signature = bytes(account.sign_typed_data(full_message=typed).signature)
    request = DelegatedRequest(attester=account.address, recipient=account.address, data=b"x", deadline=10**10,
                               nonce=1, signature=signature)  # fmt: skip
    assert request.signer(domain=DOMAIN) == account.address
    other = EasDomain(name="EAS", version="1.3.0", chain_id=1, verifying_contract=DOMAIN.verifying_contract)
    assert request.digest(domain=other) != request.digest(domain=DOMAIN) == _eth_account_digest(typed)
    with pytest.raises(MalformedInput):
        attest_digest(domain=DOMAIN, attester="0x1234", recipient=account.address, data=b"", nonce=0, deadline=1,
                      schema_uid=USER_REVIEW_SCHEMA_UID)  # fmt: skip
    with pytest.raises(MalformedInput):
        attest_digest(domain=DOMAIN, attester=account.address, recipient=account.address, data=b"", nonce=-1,
                      deadline=1, schema_uid=USER_REVIEW_SCHEMA_UID)  # fmt: skip
