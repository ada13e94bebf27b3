"""``omatrust sync`` against a real anvil node: reviews attested directly by other accounts (not our publisher)
are found, verified as of their attestation, stored with source ``chain``, and a second run changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlmodel import Session, select

from service.chain.codec import encode_review
from service.chain.deploy import bootstrap
from service.chain.eas_relayer import EasClient
from service.chain.embedded import EAS_ADDRESS, SCHEMA_REGISTRY_ADDRESS
from service.chain.indexer import ReviewIndexer
from service.chain.rpc import connect
from service.cli.demo_kit import Reviewer
from service.cli.main import main
from service.dids import did_address
from service.domain import Review
from service.store.tables import ChainRejectRow, IndexerProgressRow, ReceiptClaimRow, ReviewRow
from service.workflows.runtime import Runtime
from service.workflows.sync import sync_chain
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode, anvil_fixture
from tests.workflows.conftest import BatchEnv, forge_eip712

pytestmark = pytest.mark.anvil
anvil_node = anvil_fixture()


@pytest.fixture(scope="module")
def booted(anvil_node: AnvilNode) -> Iterator[AnvilNode]:
    bootstrap(w3=connect(rpc_url=anvil_node.url), eas_address=EAS_ADDRESS, registry_address=SCHEMA_REGISTRY_ADDRESS,
              payer=Account.from_key(ANVIL_DEV_KEY_0))  # fmt: skip
    return anvil_node


class Attester:
    """Someone who calls EAS ``attest`` themselves (pays their own gas): the on-chain attester."""

    def __init__(self, node: AnvilNode) -> None:
        self.account: LocalAccount = Account.create()
        node.rpc("anvil_setBalance", [self.account.address, hex(10**20)])
        self.client = EasClient(w3=connect(rpc_url=node.url), eas_address=EAS_ADDRESS, relayer=self.account,
                                poll_interval=0.02)  # fmt: skip

    @property
    def address(self) -> str:
        return str(self.account.address)

    def attest(self, *, subject: str, proofs: list[dict[str, Any]], rating: int = 5, recipient: str | None = None,
               body: str = "direct attestation") -> tuple[str, bytes]:  # fmt: skip
        review = Review(subject=subject, version="", rating_value=rating, review_body=body, screenshot_urls=(),
                        proofs=tuple(json.dumps(p, separators=(",", ":")) for p in proofs))  # fmt: skip
        data = encode_review(review=review)
        landed = self.client.attest_direct(data=data, recipient=recipient or did_address(subject))
        return landed.uid.lower(), data


def _sync_runtime(env: BatchEnv, node: AnvilNode) -> Runtime:
    client = EasClient(w3=connect(rpc_url=node.url), eas_address=EAS_ADDRESS, relayer=None)
    return Runtime(engine=env.engine, eas=client, resolver=env.rt.resolver, controllers=env.rt.controllers,
                   policy=env.rt.policy, clock=env.clock)  # fmt: skip


def _by_uid(env: BatchEnv, uid: str) -> ReviewRow:
    with Session(env.engine) as s:
        row = s.exec(select(ReviewRow).where(ReviewRow.attestation_uid == uid)).one()
    return row


def test_sync_judges_direct_attestations_and_is_idempotent(
    booted: AnvilNode, cli_env: BatchEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, m = cli_env, cli_env.merchant
    now = int(env.clock())
    subject = m.did
    start_block = int(booted.rpc("eth_blockNumber"), 16) + 1

    good, forged, mismatched, elsewhere, garbage, twice = (Attester(booted) for _ in range(6))
    uid_good, _ = good.attest(subject=subject, proofs=[m.receipt(payer=good.address, issued_at=now - 60)])
    real = m.receipt(payer=forged.address, issued_at=now - 60)
    uid_forged, _ = forged.attest(subject=subject, proofs=[forge_eip712(real, payer=forged.address.lower())])
    uid_payer, _ = mismatched.attest(subject=subject, proofs=[m.receipt(payer=good.address, issued_at=now - 50)])
    uid_recipient, _ = elsewhere.attest(subject=subject, proofs=[m.receipt(payer=elsewhere.address, issued_at=now)],
                                        recipient=did_address("did:web:other.example"))  # fmt: skip
    uid_garbage, _ = garbage.attest(subject=subject, proofs=[], rating=7)
    uid_first, _ = twice.attest(subject=subject, proofs=[], rating=2)
    uid_second, _ = twice.attest(subject=subject, proofs=[], rating=4)

    # Our own review, accepted by the API (not yet linked to its UID), then found on chain.
    own_reviewer = Reviewer(account=Account.create())
    own_id = env.submit(own_reviewer, proofs=[m.receipt(payer=own_reviewer.address, issued_at=now - 30)])
    own_data = bytes.fromhex(env.review(own_id).data_hex[2:])
    own_attester = Attester(booted)
    own_attester.account = own_reviewer.account
    booted.rpc("anvil_setBalance", [own_reviewer.address, hex(10**20)])
    own_attester.client = EasClient(w3=connect(rpc_url=booted.url), eas_address=EAS_ADDRESS,
                                    relayer=own_reviewer.account, poll_interval=0.02)  # fmt: skip
    uid_own = own_attester.client.attest_direct(data=own_data, recipient=did_address(subject)).uid.lower()

    rt = _sync_runtime(env, booted)
    report = sync_chain(rt=rt, indexer=ReviewIndexer(client=rt.eas), from_block=start_block)

    assert report.stored == 6
    assert report.linked == 1
    assert report.rejected == 1
    assert report.known == 0
    row = _by_uid(env, uid_good)
    assert (row.source, row.attester, row.verified_purchase, row.evidence) == ("chain", good.address.lower(), True,
                                                                                "verified")  # fmt: skip
    (proof,) = env.proofs(row.id)
    assert (proof.status, proof.tier, proof.bound) == ("verified", "did-document", True)
    assert abs(proof.checked_at - now) <= 5

    row = _by_uid(env, uid_forged)
    (proof,) = env.proofs(row.id)
    assert (proof.status, proof.reason) == ("unauthorized", "signer-not-authorized")
    assert (row.verified_purchase, row.evidence) == (False, "unauthorized")

    row = _by_uid(env, uid_payer)
    (proof,) = env.proofs(row.id)
    assert (proof.status, proof.bound, proof.reason) == ("verified", False, "payer-mismatch")
    assert (row.verified_purchase, row.evidence) == (False, "none")

    row = _by_uid(env, uid_recipient)
    assert (row.problem, row.verified_purchase, row.evidence) == ("recipient-mismatch", False, "none")
    assert env.proofs(row.id)[0].status == "verified"  # the proof itself is fine; the review does not count

    with Session(env.engine) as s:
        reject = s.get(ChainRejectRow, uid_garbage)
        assert reject is not None
        assert reject.reason == "invalid-rating"
        claims = list(s.exec(select(ReceiptClaimRow)))
    first, second = _by_uid(env, uid_first), _by_uid(env, uid_second)
    assert (first.superseded_by, second.superseded_by) == (second.id, None)
    assert env.review(own_id).attestation_uid == uid_own
    # Only receipts bound to their review claim it (the payer-mismatched one does not).
    backed = {_by_uid(env, u).id for u in (uid_good, uid_forged, uid_recipient)} | {own_id}
    assert {c.review_id for c in claims} == backed

    with Session(env.engine) as s:
        stored_rows = len(list(s.exec(select(ReviewRow))))
        checkpoint = s.get(IndexerProgressRow, "user-reviews")
    assert checkpoint is not None
    assert checkpoint.last_block == report.to_block

    # Again through the CLI: nothing new after the checkpoint; and a full re-scan stores nothing twice.
    monkeypatch.setenv("OMATRUST_RPC_URL", booted.url)
    assert main(["sync"]) == 0
    assert main(["sync", "--from", str(start_block)]) == 0
    again = sync_chain(rt=rt, indexer=ReviewIndexer(client=rt.eas), from_block=0)
    assert again.stored == 0
    assert again.linked == 0
    assert again.known == report.stored + report.linked + report.rejected
    with Session(env.engine) as s:
        assert len(list(s.exec(select(ReviewRow)))) == stored_rows


def test_an_older_review_arriving_later_is_stored_superseded_with_its_receipt_replayed(
    booted: AnvilNode, batch_env: BatchEnv
) -> None:
    env, m = batch_env, batch_env.merchant
    now = int(env.clock())
    start_block = int(booted.rpc("eth_blockNumber"), 16) + 1
    attester = Attester(booted)
    receipt = m.receipt(payer=attester.address, issued_at=now - 120)
    # The same reviewer's newer review (through our API, an hour "later") already holds the receipt.
    env.clock.offset = 3600
    reviewer = Reviewer(account=attester.account)
    newer_id = env.submit(reviewer, proofs=[receipt], rating=4)
    env.clock.offset = 0
    uid, _ = attester.attest(subject=m.did, proofs=[receipt], rating=1, body="older, found later")

    rt = _sync_runtime(env, booted)
    report = sync_chain(rt=rt, indexer=ReviewIndexer(client=rt.eas), from_block=start_block)

    assert (report.stored, report.superseded_on_arrival, report.replayed) == (1, 1, 1)
    older = _by_uid(env, uid)
    assert older.superseded_by == newer_id
    assert env.review(newer_id).superseded_by is None
    (proof,) = env.proofs(older.id)
    assert (proof.status, proof.bound, proof.reason) == ("verified", False, "receipt-replayed")
    assert older.verified_purchase is False
    assert env.aggregate(older.subject_normalized)["superseded"] == 1

