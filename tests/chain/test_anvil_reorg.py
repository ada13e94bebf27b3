"""Reorgs on a real anvil node (``evm_snapshot`` / ``evm_revert`` drop the blocks and their transactions):

* the publisher re-publishes an attestation a reorg took off the chain exactly once — after confirmation (N = 1)
  and while it waited for confirmations (N = 3) — and fails it with ``deadline-expired`` once the signature expired;
* sync undoes what it stored from orphaned blocks: the store then equals a fresh sync of the canonical chain
  (reviews, supersessions, aggregates, field by field).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlmodel import Session, select

from service.chain.codec import encode_review, review_recipient
from service.chain.delegation import DelegatedRequest
from service.chain.deploy import bootstrap
from service.chain.eas_relayer import EasClient
from service.chain.embedded import EAS_ADDRESS, SCHEMA_REGISTRY_ADDRESS
from service.chain.indexer import ReviewIndexer
from service.chain.outbox import InMemoryOutbox
from service.chain.publisher import Publisher
from service.chain.rpc import connect
from service.domain import Reason, Review
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.store.tables import IndexerProgressRow, ReviewRow, SubjectAggregateRow
from service.workflows.runtime import Runtime
from service.workflows.sync import sync_chain
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode, anvil_fixture
from tests.support.db import fresh_database_url

pytestmark = pytest.mark.anvil
anvil_node = anvil_fixture()


@pytest.fixture(scope="module")
def booted(anvil_node: AnvilNode) -> AnvilNode:
    bootstrap(w3=connect(rpc_url=anvil_node.url), eas_address=EAS_ADDRESS, registry_address=SCHEMA_REGISTRY_ADDRESS,
              payer=Account.from_key(ANVIL_DEV_KEY_0))  # fmt: skip
    return anvil_node


def _client(node: AnvilNode, *, direct: bool = True) -> EasClient:
    """As the service wires it: reads posted straight to the node (the reorg watch's block hashes in one batch);
    ``direct=False``: everything through web3's provider (a proxied node)."""
    client = EasClient(w3=connect(rpc_url=node.url), eas_address=EAS_ADDRESS,
                       relayer=Account.from_key(ANVIL_DEV_KEY_0), poll_interval=0.02)  # fmt: skip
    if direct:
        client.post_reads_directly(rpc_url=node.url, timeout=10.0)
    return client


def _review(subject: str, rating: int = 4, body: str = "ok") -> Review:
    return Review(subject=subject, version="1.0.0", rating_value=rating, review_body=body, screenshot_urls=(),
                  proofs=())  # fmt: skip


def _signed(
    client: EasClient, reviewer: LocalAccount, review: Review, *, nonce: int, deadline: int
) -> DelegatedRequest:
    data = encode_review(review=review)
    recipient = review_recipient(subject=review.subject)
    typed = client.build_attest_typed_data(attester=reviewer.address, data=data, recipient=recipient,
                                           deadline=deadline, nonce=nonce)  # fmt: skip
    signature = bytes(Account.sign_typed_data(reviewer.key, full_message=typed).signature)
    return DelegatedRequest(reviewer.address, data, recipient, deadline, nonce, signature)


def _attested(client: EasClient, attester: str) -> list[str]:
    """UIDs of the canonical chain's Attested events by ``attester``."""
    head = client.block_number()
    return ["0x" + bytes(log["data"])[:32].hex() for log in client.attested_logs(from_block=0, to_block=head,
                                                                                 attester=attester)]  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _publish_one(node: AnvilNode, *, confirmations: int, deadline_in: int = 3600, direct: bool = True):
    client = _client(node, direct=direct)
    clock = Clock()
    reviewer = Account.create()
    request = _signed(client, reviewer, _review("did:web:reorg.example.com"), nonce=0,
                      deadline=int(time.time()) + deadline_in)  # fmt: skip
    outbox = InMemoryOutbox()
    item_id = outbox.enqueue(request=request, key=client.content_key(request=request))
    publisher = Publisher(client=client, outbox=outbox, clock=clock, confirmations=confirmations, receipt_timeout=30)
    return client, clock, reviewer, outbox, item_id, publisher


@pytest.mark.parametrize("direct", [True, False], ids=["direct-reads", "web3-provider"])
def test_reorg_after_confirmation_republishes_exactly_once(booted: AnvilNode, direct: bool) -> None:
    client, _clock, reviewer, outbox, item_id, publisher = _publish_one(booted, confirmations=1, direct=direct)
    snapshot = booted.rpc("evm_snapshot")
    report = publisher.run_once()
    assert report.confirmed == 1
    orphan = outbox.record(item_id=item_id).uid
    assert _attested(client, reviewer.address) == [orphan]

    booted.rpc("evm_revert", [snapshot])  # the block (and the transaction) are gone
    booted.rpc("anvil_mine", ["0x2"])
    assert _attested(client, reviewer.address) == []
    report = publisher.run_once()
    assert report.reorged == 1
    assert report.confirmed == 1
    record = outbox.record(item_id=item_id)
    assert record.state == "confirmed"
    assert record.item.reorgs == 1
    assert record.uid is not None
    assert _attested(client, reviewer.address) == [record.uid]  # one attestation by this review, the new UID
    assert publisher.run_once().transactions == 0  # and nothing more
    assert _attested(client, reviewer.address) == [record.uid]


def test_reorg_before_confirmations_republishes_then_confirms(booted: AnvilNode) -> None:
    client, _clock, reviewer, outbox, item_id, publisher = _publish_one(booted, confirmations=3)
    snapshot = booted.rpc("evm_snapshot")
    report = publisher.run_once()
    assert report.awaiting == 1
    landed = outbox.record(item_id=item_id)
    assert landed.state == "submitted"
    assert landed.item.uid is not None
    booted.rpc("evm_revert", [snapshot])
    booted.rpc("anvil_mine", ["0x1"])
    report = publisher.run_once()
    assert report.reorged == 1
    assert report.awaiting == 1  # sent again, mined, waiting again
    booted.rpc("anvil_mine", ["0x3"])
    assert publisher.run_once().confirmed == 1
    record = outbox.record(item_id=item_id)
    assert record.state == "confirmed"
    assert _attested(client, reviewer.address) == [record.uid]


def test_reorg_after_the_deadline_fails_deadline_expired(booted: AnvilNode) -> None:
    client, clock, reviewer, outbox, item_id, publisher = _publish_one(booted, confirmations=1, deadline_in=120)
    snapshot = booted.rpc("evm_snapshot")
    assert publisher.run_once().confirmed == 1
    booted.rpc("evm_revert", [snapshot])
    booted.rpc("anvil_mine", ["0x2"])
    clock.offset = 600  # the signature expired meanwhile
    report = publisher.run_once()
    assert report.reorged == 1
    assert report.failed == 1
    record = outbox.record(item_id=item_id)
    assert record.state == "failed"
    assert record.last_error is not None
    assert record.last_error.startswith(Reason.DEADLINE_EXPIRED.value)
    assert "POST /v1/reviews/prepare" in record.last_error
    assert _attested(client, reviewer.address) == []


# ---- the indexer -------------------------------------------------------------------------------------------


def _runtime(url: str, node: AnvilNode) -> Runtime:
    engine = make_engine(url=url)
    upgrade(engine=engine)
    client = EasClient(w3=connect(rpc_url=node.url), eas_address=EAS_ADDRESS, relayer=None)
    return Runtime(engine=engine, eas=client, resolver=None, controllers=None)


def _sync(rt: Runtime, start: int) -> None:
    sync_chain(rt=rt, indexer=ReviewIndexer(client=rt.eas, chunk_blocks=7), from_block=None, to_block=None,
               lookup_threads=2)  # fmt: skip
    del start


def _snapshot_of_store(rt: Runtime) -> dict[str, Any]:
    """Everything sync decides, keyed by attestation UID (review ids are random per store)."""
    with Session(rt.engine) as s:
        rows = list(s.exec(select(ReviewRow)))
        uid_of = {r.id: r.attestation_uid for r in rows}
        reviews = {
            r.attestation_uid: (r.subject_normalized, r.attester, r.rating_value, r.review_body, r.review_time,
                                r.evidence, r.verified_purchase, r.problem, r.attestation_block,
                                uid_of.get(r.superseded_by) if r.superseded_by else None)
            for r in rows
        }  # fmt: skip
        aggregates = {}
        for a in s.exec(select(SubjectAggregateRow)):
            state = dict(a.state)
            state.pop("lastReviewAt", None)  # kept on removal by design (scoring.aggregate); not a count
            state["decaySums"] = [round(x, 9) for x in state.get("decaySums", [])]
            aggregates[a.subject_normalized] = (state, a.review_count)
    return {"reviews": reviews, "aggregates": aggregates}


def _ours(snapshot: dict[str, Any]) -> int:
    """Reviews of this test's subjects (the module's node also holds the other tests' attestations)."""
    ours = ("did:web:shop.example.com", "did:web:cafe.example.com")
    return sum(1 for r in snapshot["reviews"].values() if r[0] in ours)


def test_reorg_under_the_indexer_store_equals_fresh_sync(booted: AnvilNode, tmp_path: Path) -> None:
    client = _client(booted)
    alice, bob, carol, dave = (Account.create() for _ in range(4))
    deadline = int(time.time()) + 3600
    start = client.block_number() + 1
    # canonical before the fork: alice and bob review the shop
    client.submit(requests=[_signed(client, alice, _review("did:web:shop.example.com", 2), nonce=0, deadline=deadline),
                            _signed(client, bob, _review("did:web:shop.example.com", 5), nonce=0, deadline=deadline)])
    snapshot = booted.rpc("evm_snapshot")
    # to be orphaned: alice revises her review (supersedes the first), carol reviews, a review of another subject
    client.submit(requests=[_signed(client, alice, _review("did:web:shop.example.com", 1, "worse"), nonce=1,
                                    deadline=deadline)])  # fmt: skip
    client.submit(requests=[_signed(client, carol, _review("did:web:shop.example.com", 3), nonce=0, deadline=deadline),
                            _signed(client, carol, _review("did:web:cafe.example.com", 4), nonce=1, deadline=deadline)])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with fresh_database_url(tmp_path / "a") as url_a, fresh_database_url(tmp_path / "b") as url_b:
        rt = _runtime(url_a, booted)
        _sync(rt, start)
        before = _snapshot_of_store(rt)
        assert _ours(before) == 5

        booted.rpc("evm_revert", [snapshot])
        # the canonical chain goes on differently: alice revises to 4 stars, dave reviews
        client.resync_nonce()
        client.submit(requests=[_signed(client, alice, _review("did:web:shop.example.com", 4, "better"), nonce=1,
                                        deadline=deadline)])  # fmt: skip
        client.submit(requests=[_signed(client, dave, _review("did:web:cafe.example.com", 5), nonce=0,
                                        deadline=deadline)])  # fmt: skip
        booted.rpc("anvil_mine", ["0x3"])
        _sync(rt, start)
        after = _snapshot_of_store(rt)
        with Session(rt.engine) as s:
            progress = s.exec(select(IndexerProgressRow)).one()
        assert progress.last_block == client.block_number()

        fresh = _runtime(url_b, booted)
        _sync(fresh, start)
        canonical = _snapshot_of_store(fresh)
        assert _ours(canonical) == 4
        assert _ours(after) == 4
        assert after["reviews"] == canonical["reviews"]
        assert after["aggregates"] == canonical["aggregates"]
        rt.engine.dispose()
        fresh.engine.dispose()


def test_reorg_with_the_sql_outbox_moves_the_review_to_its_new_uid(booted: AnvilNode, tmp_path: Path) -> None:
    from service.store.engine import session_scope
    from service.store.tables import OutboxRow
    from service.workflows.outbox import SqlOutbox

    client = _client(booted)
    reviewer = Account.create()
    review = _review("did:web:sql-reorg.example.com", 3)
    request = _signed(client, reviewer, review, nonce=0, deadline=int(time.time()) + 3600)
    now = int(time.time())
    with fresh_database_url(tmp_path) as url:
        rt = _runtime(url, booted)
        with session_scope(rt.engine) as s:
            s.add(ReviewRow(id="r1", subject=review.subject, subject_normalized=review.subject,
                            did_address=request.recipient.lower(), attester=reviewer.address.lower(), rating_value=3,
                            data_hex="0x" + request.data.hex(), review_time=now, source="api", created_at=now))
            s.flush()
            s.add(OutboxRow(content_key=client.content_key(request=request), review_id="r1",
                            attester=request.attester, recipient=request.recipient, data_hex=request.data.hex(),
                            deadline=request.deadline, nonce=str(request.nonce), signature=request.signature.hex(),
                            created_at=now, updated_at=now))  # fmt: skip
        publisher = Publisher(client=client, outbox=SqlOutbox(engine=rt.engine, chain_ref=None), receipt_timeout=30)
        snapshot = booted.rpc("evm_snapshot")
        assert publisher.run_once().confirmed == 1
        with Session(rt.engine) as s:
            first_uid = s.get(ReviewRow, "r1").attestation_uid
        booted.rpc("evm_revert", [snapshot])
        booted.rpc("anvil_mine", ["0x2"])
        with Session(rt.engine) as s:
            assert s.get(ReviewRow, "r1").attestation_uid == first_uid  # the store does not know yet
        report = publisher.run_once()
        assert (report.reorged, report.confirmed) == (1, 1)
        with Session(rt.engine) as s:
            row = s.get(ReviewRow, "r1")
            item = s.exec(select(OutboxRow)).one()
        assert row.attestation_uid is not None  # equal to first_uid when both blocks got the same timestamp
        assert _attested(client, reviewer.address) == [row.attestation_uid]  # one attestation for this review
        assert [e["event"] for e in item.history] == ["submitted", "confirmed", "reorged", "submitted", "confirmed"]
        assert item.history[2]["uid"] == first_uid
        rt.engine.dispose()
