"""Payment-backed reviews against a real anvil node as the payment network (JSON-RPC over HTTP, one batched read
per transaction): real EIP-3009 settlements of Circle's FiatTokenV2_2 by the x402 facilitator, each bad case
refused or kept with its reason, confirmations, and a reorg that removes a payment after acceptance."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import Wei

from service.chain.token import ensure_token, mint_to
from service.cli.demo_kit import Merchant, Reviewer
from service.domain import Review
from service.errors import ChainUnavailable
from service.payments.reader import PaymentReader
from service.payments.sources import JsonRpcSource
from service.store.engine import session_scope
from service.store.tables import OutcomeHistoryRow, ProofRow
from service.workflows.payment_check import start_chain_reads
from service.workflows.reverify import ReverifyOptions, reverify
from service.workflows.submit import prepare_review, submit_review
from tests.payments.conftest import PRICE, Service, receipt_for, signed_offer
from tests.payments.settle import Settler
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode, anvil_fixture, free_port
from tests.support.didweb_host import DidWebHost

pytestmark = pytest.mark.anvil

anvil_node = anvil_fixture()


@pytest.fixture(scope="module")
def anvil_w3(anvil_node: AnvilNode) -> Web3:
    w3 = Web3(Web3.HTTPProvider(anvil_node.url))
    ensure_token(w3=w3, funder=Account.from_key(ANVIL_DEV_KEY_0), holders=[])
    return w3


@pytest.fixture(scope="module")
def anvil_network(anvil_w3: Web3) -> str:
    return f"eip155:{anvil_w3.eth.chain_id}"


@pytest.fixture
def anvil_settler(anvil_w3: Web3) -> Settler:
    # Per test: the reorg test rewinds the chain under the facilitator (its next nonce must be read again).
    return Settler(w3=anvil_w3, gas_key=ANVIL_DEV_KEY_0)


@pytest.fixture
def shop(didweb: DidWebHost, anvil_network: str) -> Merchant:
    m = Merchant(host=didweb.host, network=anvil_network)
    didweb.set_document(m.did_document())
    return m


@pytest.fixture
def buyer(anvil_w3: Web3) -> Reviewer:
    r = Reviewer()
    mint_to(w3=anvil_w3, holder=r.address, amount=100 * PRICE)
    return r


@pytest.fixture
def on_anvil(make_service: Callable[..., Service], anvil_node: AnvilNode, anvil_network: str) -> Callable[..., Service]:
    def build(confirmations: int = 1, **extra: Any) -> Service:
        sources = {anvil_network: JsonRpcSource(url=anvil_node.url), **extra}
        return make_service(sources=sources, confirmations=confirmations)

    return build


def submit(svc: Service, shop: Merchant, buyer: Reviewer | Any, tx: str, *, offer: dict[str, Any] | None = None,
           **receipt: Any) -> Any:  # fmt: skip
    proofs = ([offer] if offer else []) + [receipt_for(shop, buyer, tx, **receipt)]
    return buyer.submit(svc.client, subject=shop.did, ratingValue=5, proofs=proofs)


def refused(resp: Any, code: str, finer: str) -> None:
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert (body["code"], body["type"]) == (code, f"urn:omatrust:problem:{code}")
    assert finer in body["detail"], body["detail"]


def test_settled_payment_is_payment_backed_with_one_rpc_read(
    on_anvil: Callable[..., Service], shop: Merchant, buyer: Reviewer, anvil_settler: Settler, anvil_network: str
) -> None:
    svc = on_anvil()
    tx = anvil_settler.pay(payer=buyer.account, pay_to=shop.address, amount=PRICE)
    resp = submit(svc, shop, buyer, tx, offer=signed_offer(shop, network=anvil_network))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["paymentBacked"], body["evidence"]) == (True, "payment-backed")
    payment = body["proofs"][1]["payment"]
    assert (payment["status"], payment["method"], payment["network"]) == ("settled", "eip3009", anvil_network)
    assert payment["payTo"] == shop.address.lower()
    assert payment["amount"] == str(PRICE)
    # One read: sent ahead by the prepare call and taken by its check; the submission's check was a cached repeat.
    assert (svc.payments.reads, svc.payments.joined) == (1, 1)


def test_tx_paying_another_address_is_refused(
    on_anvil: Callable[..., Service], shop: Merchant, buyer: Reviewer, anvil_settler: Settler, anvil_network: str
) -> None:
    svc = on_anvil()
    elsewhere = Account.create().address
    tx = anvil_settler.pay(payer=buyer.account, pay_to=elsewhere, amount=PRICE)
    refused(submit(svc, shop, buyer, tx, offer=signed_offer(shop, network=anvil_network)),
            "payment-mismatch", "payment-wrong-payee")  # fmt: skip
    # Without an offer the address paid must be authorized for the service: it is not.
    refused(submit(svc, shop, buyer, tx), "payment-mismatch", "payment-payee-not-authorized")


def test_wrong_amount_is_refused(
    on_anvil: Callable[..., Service], shop: Merchant, buyer: Reviewer, anvil_settler: Settler, anvil_network: str
) -> None:
    svc = on_anvil()
    tx = anvil_settler.pay(payer=buyer.account, pay_to=shop.address, amount=PRICE - 1)
    refused(submit(svc, shop, buyer, tx, offer=signed_offer(shop, network=anvil_network)),
            "payment-mismatch", "payment-wrong-amount")  # fmt: skip


def test_wrong_asset_is_refused(
    on_anvil: Callable[..., Service], shop: Merchant, buyer: Reviewer, anvil_settler: Settler, anvil_network: str
) -> None:
    svc = on_anvil()
    tx = anvil_settler.pay(payer=buyer.account, pay_to=shop.address, amount=PRICE)
    other_asset = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"  # the offer names Base USDC; the tx moved test USDC
    refused(submit(svc, shop, buyer, tx, offer=signed_offer(shop, network=anvil_network, asset=other_asset)),
            "payment-mismatch", "payment-wrong-asset")  # fmt: skip


def test_tx_paid_by_someone_other_than_the_payer_is_refused(
    on_anvil: Callable[..., Service], shop: Merchant, buyer: Reviewer, anvil_settler: Settler, anvil_w3: Web3
) -> None:
    svc = on_anvil()
    friend = Account.create()
    mint_to(w3=anvil_w3, holder=friend.address, amount=PRICE)
    tx = anvil_settler.pay(payer=friend, pay_to=shop.address, amount=PRICE)
    refused(submit(svc, shop, buyer, tx), "payment-mismatch", "payment-wrong-payer")


def _reverting_transfer(w3: Web3, node: AnvilNode, payer: LocalAccount, to: str) -> str:
    """A real transaction that reverts: the payer transfers more test USDC than it holds (gas limit given, so the
    node mines it instead of refusing it at estimation)."""
    from service.chain.token import TOKEN_ADDRESS, token_contract

    node.rpc("anvil_setBalance", [payer.address, hex(10**18)])
    data = token_contract(w3=w3).encode_abi("transfer", args=[Web3.to_checksum_address(to), 10**30])
    tx = {"to": TOKEN_ADDRESS, "data": data, "gas": 100_000, "nonce": w3.eth.get_transaction_count(payer.address),
          "chainId": w3.eth.chain_id, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}  # fmt: skip
    tx_hash = w3.eth.send_raw_transaction(payer.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10, poll_latency=0.05)
    assert receipt["status"] == 0
    return "0x" + bytes(tx_hash).hex().removeprefix("0x")


def test_reverted_tx_is_refused(
    on_anvil: Callable[..., Service], shop: Merchant, buyer: Reviewer, anvil_w3: Web3, anvil_node: AnvilNode
) -> None:
    svc = on_anvil()
    tx = _reverting_transfer(anvil_w3, anvil_node, buyer.account, shop.address)
    refused(submit(svc, shop, buyer, tx), "payment-reverted", "payment-reverted")


def test_tx_on_another_network_is_not_found(
    on_anvil: Callable[..., Service], shop: Merchant, buyer: Reviewer, anvil_settler: Settler, chain: Any
) -> None:
    svc = on_anvil()
    tx = anvil_settler.pay(payer=buyer.account, pay_to=shop.address, amount=PRICE)
    # The receipt says the payment was on the embedded chain (also configured): it is not there.
    shop.network = f"eip155:{chain.w3.eth.chain_id}"
    refused(submit(svc, shop, buyer, tx), "payment-not-found", "payment-not-found")


def test_unknown_tx_is_not_found(on_anvil: Callable[..., Service], shop: Merchant, buyer: Reviewer) -> None:
    svc = on_anvil()
    refused(submit(svc, shop, buyer, "0x" + "0f" * 32), "payment-not-found", "payment-not-found")


def test_network_not_configured_is_accepted_as_verified(
    on_anvil: Callable[..., Service], shop: Merchant, buyer: Reviewer
) -> None:
    svc = on_anvil()
    shop.network = "eip155:999999"
    resp = submit(svc, shop, buyer, "0x" + "0e" * 32)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["verifiedPurchase"], body["paymentBacked"], body["evidence"]) == (True, False, "verified")
    payment = body["proofs"][0]["payment"]
    assert (payment["status"], payment["reason"]) == ("indeterminate", "network-not-configured")


def test_nul_in_a_named_network_is_refused_before_any_write(
    on_anvil: Callable[..., Service], shop: Merchant, buyer: Reviewer
) -> None:
    """The receipt's network is copied into its payment check (stored as JSON): a NUL there is refused at the edge
    like any other unstorable value — PostgreSQL's JSON record functions cannot hold it, even inside ``json``."""
    svc = on_anvil()
    shop.network = "eip155:999999\u0000"
    resp = submit(svc, shop, buyer, "0x" + "0c" * 32)
    assert (resp.status_code, resp.json()["code"]) == (422, "value-not-storable"), resp.text


def test_rpc_down_is_indeterminate_never_a_refusal(
    make_service: Callable[..., Service], shop: Merchant, buyer: Reviewer, anvil_network: str
) -> None:
    svc = make_service(sources={anvil_network: JsonRpcSource(url=f"http://127.0.0.1:{free_port()}", timeout=1.0)})
    resp = submit(svc, shop, buyer, "0x" + "0d" * 32)
    assert resp.status_code == 201, resp.text
    payment = resp.json()["proofs"][0]["payment"]
    assert (payment["status"], payment["reason"]) == ("indeterminate", "rpc-failed")
    assert resp.json()["evidence"] == "verified"


def _reverify(svc: Service) -> Any:
    return reverify(engine=svc.rt.engine, resolver=svc.rt.resolver, controllers=svc.rt.controllers,
                    policy=svc.rt.policy, options=ReverifyOptions(workers=0), payments=svc.payments)  # fmt: skip


def _history(svc: Service, review_id: str) -> list[tuple[str | None, str | None]]:
    with session_scope(svc.rt.engine) as session:
        rows = session.query(OutcomeHistoryRow).filter(OutcomeHistoryRow.review_id == review_id).all()
        return [(r.before_reason, r.after_reason) for r in rows]


def test_pending_until_confirmed_then_upgraded(
    on_anvil: Callable[..., Service], shop: Merchant, buyer: Reviewer, anvil_settler: Settler,
    anvil_node: AnvilNode,
) -> None:  # fmt: skip
    svc = on_anvil(confirmations=3)
    tx = anvil_settler.pay(payer=buyer.account, pay_to=shop.address, amount=PRICE)
    resp = submit(svc, shop, buyer, tx)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["verifiedPurchase"], body["paymentBacked"], body["evidence"]) == (True, False, "verified")
    assert (body["proofs"][0]["payment"]["status"], body["proofs"][0]["payment"]["confirmations"]) == ("pending", 1)
    anvil_node.rpc("anvil_mine", [hex(2)])
    report = _reverify(svc)
    assert [c["after"]["status"] for c in report.payment_changes] == ["settled"]
    after = svc.client.get(f"/v1/reviews/{body['id']}").json()
    assert (after["paymentBacked"], after["evidence"]) == (True, "payment-backed")
    assert after["proofs"][0]["payment"]["confirmations"] >= 3
    assert _history(svc, body["id"]) == [("payment:pending", "payment:settled")]
    reputation = svc.client.get(f"/v1/services/{shop.did.replace('%', '%25')}/reputation").json()
    assert reputation["paymentBackedWeight"] > 0
    assert reputation["topPayerShare"] == pytest.approx(1.0)


def test_rpc_down_at_reverify_never_downgrades(
    make_service: Callable[..., Service], shop: Merchant, buyer: Reviewer, anvil_settler: Settler,
    anvil_network: str, anvil_node: AnvilNode,
) -> None:  # fmt: skip
    reachable = JsonRpcSource(url=anvil_node.url)
    svc = make_service(sources={anvil_network: reachable})
    tx = anvil_settler.pay(payer=buyer.account, pay_to=shop.address, amount=PRICE)
    body = submit(svc, shop, buyer, tx).json()
    assert body["paymentBacked"] is True, body
    svc.payments.sources[anvil_network] = JsonRpcSource(url=f"http://127.0.0.1:{free_port()}", timeout=1.0)
    report = _reverify(svc)
    assert report.payment_changes == []
    assert [k["reason"] for k in report.payment_kept] == ["rpc-failed"]
    assert report.exit_code() == 3
    assert svc.client.get(f"/v1/reviews/{body['id']}").json()["paymentBacked"] is True
    with session_scope(svc.rt.engine) as session:
        assert session.query(ProofRow).filter(ProofRow.review_id == body["id"]).one().payment_status == "settled"


def test_reorg_removing_the_payment_downgrades_at_next_reverify(
    on_anvil: Callable[..., Service], shop: Merchant, buyer: Reviewer, anvil_settler: Settler,
    anvil_node: AnvilNode,
) -> None:  # fmt: skip
    svc = on_anvil()
    snapshot = anvil_node.rpc("evm_snapshot")
    tx = anvil_settler.pay(payer=buyer.account, pay_to=shop.address, amount=PRICE)
    body = submit(svc, shop, buyer, tx).json()
    assert body["paymentBacked"] is True, body
    # A reorg: the chain goes back before the payment and grows past it without it.
    assert anvil_node.rpc("evm_revert", [snapshot]) is True
    anvil_node.rpc("anvil_mine", [hex(3)])
    # A plain re-read still answers from the cache (settled results are cached); reverify reads again.
    report = _reverify(svc)
    assert [(c["before"]["status"], c["after"]["status"]) for c in report.payment_changes] == [
        ("settled", "not-found")]  # fmt: skip
    after = svc.client.get(f"/v1/reviews/{body['id']}").json()
    assert (after["paymentBacked"], after["evidence"], after["verifiedPurchase"]) == (False, "verified", True)
    assert after["proofs"][0]["payment"]["reason"] == "payment-not-found"
    assert _history(svc, body["id"]) == [("payment:settled", "payment:not-found")]
    assert report.review_changes[-1]["after"]["evidence"] == "verified"


# ---- tx-interaction proofs (OMATrust): {chainId, txHash}, purpose commercial-tx -------------------------------


def _send_value(w3: Web3, node: AnvilNode, sender: LocalAccount, to: str) -> str:
    node.rpc("anvil_setBalance", [sender.address, hex(10**18)])
    tx = {"to": Web3.to_checksum_address(to), "value": 1, "gas": 21_000, "chainId": w3.eth.chain_id,
          "nonce": w3.eth.get_transaction_count(sender.address), "maxFeePerGas": 10**10,
          "maxPriorityFeePerGas": 10**9}  # fmt: skip
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10, poll_latency=0.05)["status"] == 1
    return "0x" + bytes(tx_hash).hex().removeprefix("0x")


def _tx_proof(network: str, tx: str) -> dict[str, Any]:
    return {"proofType": "tx-interaction", "proofPurpose": "commercial-tx",
            "proofObject": {"chainId": network, "txHash": tx}}  # fmt: skip


def test_tx_interaction_with_the_service_is_its_own_evidence_class(
    on_anvil: Callable[..., Service], shop: Merchant, anvil_w3: Web3, anvil_node: AnvilNode, anvil_network: str
) -> None:
    svc = on_anvil()
    reviewer = Reviewer()
    tx = _send_value(anvil_w3, anvil_node, reviewer.account, shop.address)  # to an address in the shop's did.json
    resp = reviewer.submit(svc.client, subject=shop.did, ratingValue=4, proofs=[_tx_proof(anvil_network, tx)])
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["evidence"], body["verifiedPurchase"], body["paymentBacked"]) == ("tx-interaction", False, False)
    assert (body["proofs"][0]["proofType"], body["proofs"][0]["status"]) == ("tx-interaction", "verified")
    # Re-verification keeps it (the signature pipeline knows nothing of it).
    report = _reverify(svc)
    assert report.changed == 0
    assert svc.client.get(f"/v1/reviews/{body['id']}").json()["evidence"] == "tx-interaction"


def test_tx_interaction_to_another_address_is_stored_unauthorized(
    on_anvil: Callable[..., Service], shop: Merchant, anvil_w3: Web3, anvil_node: AnvilNode, anvil_network: str
) -> None:
    svc = on_anvil()
    reviewer = Reviewer()
    tx = _send_value(anvil_w3, anvil_node, reviewer.account, Account.create().address)
    resp = reviewer.submit(svc.client, subject=shop.did, ratingValue=4, proofs=[_tx_proof(anvil_network, tx)])
    assert resp.status_code == 201, resp.text
    proof = resp.json()["proofs"][0]
    assert (proof["status"], proof["reason"], resp.json()["evidence"]) == (
        "unauthorized", "tx-target-not-authorized", "none")  # fmt: skip


def test_tx_interaction_refusals(
    on_anvil: Callable[..., Service], shop: Merchant, anvil_w3: Web3, anvil_node: AnvilNode, anvil_network: str
) -> None:
    svc = on_anvil()
    reviewer = Reviewer()
    someone = Account.create()
    tx = _send_value(anvil_w3, anvil_node, someone, shop.address)
    sent_by_other = reviewer.submit(svc.client, subject=shop.did, ratingValue=4,
                                    proofs=[_tx_proof(anvil_network, tx)])  # fmt: skip
    assert (sent_by_other.status_code, sent_by_other.json()["code"]) == (422, "tx-sender-mismatch")
    unknown = reviewer.submit(svc.client, subject=shop.did, ratingValue=4,
                              proofs=[_tx_proof(anvil_network, "0x" + "0c" * 32)])  # fmt: skip
    assert (unknown.status_code, unknown.json()["code"]) == (422, "tx-not-found")
    malformed = reviewer.submit(svc.client, subject=shop.did, ratingValue=4,
                                proofs=[_tx_proof("not a network", tx)])  # fmt: skip
    assert (malformed.status_code, malformed.json()["code"]) == (422, "bad-field-value")


# ---- tx-interaction proofs at re-verification: re-read like receipts' payments ------------------------------------


def _signed_value_tx(w3: Web3, sender: LocalAccount, to: str) -> tuple[str, bytes]:
    """A signed 1-wei transfer with exactly the intrinsic gas (21000): to an address with code it runs out of gas."""
    tx = {"to": Web3.to_checksum_address(to), "value": 1, "gas": 21_000, "chainId": w3.eth.chain_id,
          "nonce": w3.eth.get_transaction_count(sender.address), "maxFeePerGas": 10**10,
          "maxPriorityFeePerGas": 10**9}  # fmt: skip
    signed = sender.sign_transaction(tx)
    return "0x" + bytes(signed.hash).hex().removeprefix("0x"), bytes(signed.raw_transaction)


def _mined(w3: Web3, raw: bytes) -> int:
    tx_hash = w3.eth.send_raw_transaction(raw)
    return int(w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10, poll_latency=0.05)["status"])


def _proof_row(svc: Service, review_id: str) -> ProofRow:
    with session_scope(svc.rt.engine) as session:
        row = session.query(ProofRow).filter(ProofRow.review_id == review_id).one()
        session.expunge(row)
        return row


def _tx_history(svc: Service, review_id: str) -> list[tuple[str | None, str | None, str | None, str | None]]:
    with session_scope(svc.rt.engine) as session:
        rows = session.query(OutcomeHistoryRow).filter(OutcomeHistoryRow.review_id == review_id).all()
        return [(r.before_status, r.after_status, r.before_reason, r.after_reason) for r in rows]


def _tx_review(
    svc: Service, shop: Merchant, w3: Web3, node: AnvilNode, network: str
) -> tuple[Reviewer, str, bytes, dict[str, Any]]:
    """A review backed by a verified tx-interaction (1 wei from the reviewer to the shop), taken after a snapshot.
    Returns (reviewer, snapshot id, the signed transaction, the review as answered)."""
    reviewer = Reviewer()
    node.rpc("anvil_setBalance", [reviewer.address, hex(10**18)])
    snapshot = node.rpc("evm_snapshot")
    tx, raw = _signed_value_tx(w3, reviewer.account, shop.address)
    assert _mined(w3, raw) == 1
    resp = reviewer.submit(svc.client, subject=shop.did, ratingValue=4, proofs=[_tx_proof(network, tx)])
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["evidence"], body["proofs"][0]["status"]) == ("tx-interaction", "verified"), body
    return reviewer, snapshot, raw, body


def test_tx_interaction_removed_by_a_reorg_is_downgraded_at_reverify(
    on_anvil: Callable[..., Service], shop: Merchant, anvil_w3: Web3, anvil_node: AnvilNode, anvil_network: str
) -> None:
    svc = on_anvil()
    _, snapshot, _, body = _tx_review(svc, shop, anvil_w3, anvil_node, anvil_network)
    assert anvil_node.rpc("evm_revert", [snapshot]) is True  # the chain without the transaction …
    anvil_node.rpc("anvil_mine", [hex(3)])  # … grows past it
    report = _reverify(svc)
    assert [(c["proofType"], c["before"]["status"], c["after"]["status"], c["after"]["reason"])
            for c in report.payment_changes] == [("tx-interaction", "verified", "invalid", "tx-not-found")]  # fmt: skip
    assert report.review_changes[-1]["after"]["evidence"] == "none"
    after = svc.client.get(f"/v1/reviews/{body['id']}").json()
    assert (after["evidence"], after["proofs"][0]["status"], after["proofs"][0]["reason"]) == (
        "none", "invalid", "tx-not-found")  # fmt: skip
    assert _tx_history(svc, body["id"]) == [("verified", "invalid", None, "tx-not-found")]
    # The next run finds nothing new and does not bring the class back.
    again = _reverify(svc)
    assert (again.payment_changes, svc.client.get(f"/v1/reviews/{body['id']}").json()["evidence"]) == ([], "none")


def test_tx_interaction_reverted_after_a_reorg_is_downgraded_at_reverify(
    on_anvil: Callable[..., Service], shop: Merchant, anvil_w3: Web3, anvil_node: AnvilNode, anvil_network: str
) -> None:
    svc = on_anvil()
    _, snapshot, raw, body = _tx_review(svc, shop, anvil_w3, anvil_node, anvil_network)
    # The reorged chain holds the very same signed transaction, but there the shop's address has code that reverts:
    # with only the intrinsic gas, the transaction is mined and fails (status 0).
    assert anvil_node.rpc("evm_revert", [snapshot]) is True
    anvil_node.rpc("anvil_setCode", [shop.address, "0x60006000fd"])  # PUSH1 0 PUSH1 0 REVERT
    try:
        assert _mined(anvil_w3, raw) == 0
        report = _reverify(svc)
    finally:
        anvil_node.rpc("anvil_setCode", [shop.address, "0x"])
    assert [(c["before"]["status"], c["after"]["status"], c["after"]["reason"]) for c in report.payment_changes] == [
        ("verified", "invalid", "tx-reverted")]  # fmt: skip
    assert svc.client.get(f"/v1/reviews/{body['id']}").json()["evidence"] == "none"
    assert _tx_history(svc, body["id"]) == [("verified", "invalid", None, "tx-reverted")]


def test_rpc_down_at_reverify_keeps_a_tx_interaction(
    on_anvil: Callable[..., Service], shop: Merchant, anvil_w3: Web3, anvil_node: AnvilNode, anvil_network: str
) -> None:
    svc = on_anvil()
    _, _, _, body = _tx_review(svc, shop, anvil_w3, anvil_node, anvil_network)
    svc.payments.sources[anvil_network] = JsonRpcSource(url=f"http://127.0.0.1:{free_port()}", timeout=1.0)
    report = _reverify(svc)
    assert report.payment_changes == []
    assert [(k["proofId"] > 0, k["reason"]) for k in report.payment_kept] == [(True, "rpc-failed")]
    assert report.exit_code() == 3
    row = _proof_row(svc, body["id"])
    assert (row.status, row.reason) == ("verified", None)
    assert svc.client.get(f"/v1/reviews/{body['id']}").json()["evidence"] == "tx-interaction"
    assert _tx_history(svc, body["id"]) == []


def test_tx_interaction_pending_at_submission_is_upgraded_once_confirmed(
    on_anvil: Callable[..., Service], shop: Merchant, anvil_w3: Web3, anvil_node: AnvilNode, anvil_network: str
) -> None:
    svc = on_anvil(confirmations=3)
    reviewer = Reviewer()
    tx = _send_value(anvil_w3, anvil_node, reviewer.account, shop.address)
    resp = reviewer.submit(svc.client, subject=shop.did, ratingValue=4, proofs=[_tx_proof(anvil_network, tx)])
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["evidence"], body["proofs"][0]["status"], body["proofs"][0]["reason"]) == (
        "none", "indeterminate", "tx-pending")  # fmt: skip
    kept = _reverify(svc)  # still one confirmation: kept, an attempt
    assert (kept.payment_changes, [k["reason"] for k in kept.payment_kept]) == ([], ["tx-pending"])
    anvil_node.rpc("anvil_mine", [hex(2)])
    report = _reverify(svc)
    assert [(c["before"]["status"], c["after"]["status"]) for c in report.payment_changes] == [
        ("indeterminate", "verified")]  # fmt: skip
    after = svc.client.get(f"/v1/reviews/{body['id']}").json()
    assert (after["evidence"], after["proofs"][0]["status"]) == ("tx-interaction", "verified")
    assert _tx_history(svc, body["id"]) == [("indeterminate", "verified", "tx-pending", None)]


def test_a_tx_interaction_target_the_subject_no_longer_lists_is_kept(
    on_anvil: Callable[..., Service], shop: Merchant, anvil_w3: Web3, anvil_node: AnvilNode, anvil_network: str,
    didweb: DidWebHost,
) -> None:  # fmt: skip
    svc = on_anvil()
    _, _, _, body = _tx_review(svc, shop, anvil_w3, anvil_node, anvil_network)
    didweb.set_document(Merchant(host=didweb.host, network=anvil_network).did_document())  # the shop rotated keys
    report = _reverify(svc)
    assert (report.payment_changes, report.payment_kept, report.exit_code()) == ([], [], 0)
    assert svc.client.get(f"/v1/reviews/{body['id']}").json()["evidence"] == "tx-interaction"
    assert _tx_history(svc, body["id"]) == []


# ---- reads sent ahead (PaymentReader.prefetch over a kept-alive JSON-RPC connection) -------------------------------


def test_submission_sends_the_read_ahead_and_its_check_takes_it(
    on_anvil: Callable[..., Service], shop: Merchant, buyer: Reviewer, anvil_settler: Settler
) -> None:
    svc = on_anvil()
    tx = anvil_settler.pay(payer=buyer.account, pay_to=shop.address, amount=PRICE)
    review = Review(subject=shop.did, version="", rating_value=5, review_body="", screenshot_urls=(),
                    proofs=(json.dumps(receipt_for(shop, buyer, tx)),))  # fmt: skip
    deadline = int(time.time()) + 600
    prepared = prepare_review(rt=svc.rt, attester=buyer.address, review=review, deadline=deadline)  # no checks
    assert (svc.payments.reads, svc.payments.joined) == (0, 0)
    review_id = submit_review(rt=svc.rt, attester=buyer.address, data=prepared.data, deadline=deadline,
                              nonce=int(prepared.typed_data["message"]["nonce"]),
                              signature=buyer.sign(prepared.typed_data))  # fmt: skip
    assert (svc.payments.reads, svc.payments.joined) == (1, 1)  # sent when the review was validated, taken once
    assert svc.client.get(f"/v1/reviews/{review_id}").json()["paymentBacked"] is True


def test_a_read_sent_ahead_is_taken_by_the_check(
    anvil_node: AnvilNode, anvil_network: str, anvil_settler: Settler, shop: Merchant, buyer: Reviewer
) -> None:
    tx = anvil_settler.pay(payer=buyer.account, pay_to=shop.address, amount=PRICE)
    source = JsonRpcSource(url=anvil_node.url)
    reader = PaymentReader(sources={anvil_network: source})
    review = Review(subject=shop.did, version="", rating_value=5, review_body="", screenshot_urls=(),
                    proofs=(json.dumps(receipt_for(shop, buyer, tx)), json.dumps(_tx_proof(anvil_network, tx)),
                            "not json", json.dumps({"proofType": "x402-receipt", "proofObject": "{}"})))  # fmt: skip
    assert start_chain_reads(review=review, payments=reader) == 1  # one transaction named twice: one read
    assert (reader.reads, reader.joined) == (0, 0)  # sent, not taken yet
    seen = reader.observe(network=anvil_network, transaction=tx.upper().replace("0X", "0x"))
    assert (seen.mined, seen.status, reader.reads, reader.joined) == (True, 1, 1, 1)
    reader.observe(network=anvil_network, transaction=tx)  # cached now
    assert (reader.reads, reader.joined) == (1, 1)
    assert reader.prefetch(network=anvil_network, transaction=tx) is False  # cached: nothing sent
    assert reader.prefetch(network="eip155:999999", transaction=tx) is False  # not configured
    assert start_chain_reads(review=review, payments=None) == 0
    source.close()


def test_a_read_nobody_takes_is_dropped_and_rpc_down_is_seen_by_the_check(
    anvil_node: AnvilNode, anvil_network: str
) -> None:
    now = [1000.0]
    reader = PaymentReader(sources={anvil_network: JsonRpcSource(url=anvil_node.url)}, abandon_after=5.0,
                           max_inflight=1, clock=lambda: now[0])  # fmt: skip
    unknown, other = "0x" + "0e" * 32, "0x" + "0f" * 32
    assert reader.prefetch(network=anvil_network, transaction=unknown) is True
    assert reader.prefetch(network=anvil_network, transaction=other) is False  # max_inflight reached
    now[0] += 6  # the submission that sent it was refused before its check: dropped at the next prefetch
    assert reader.prefetch(network=anvil_network, transaction=other) is True
    assert reader.observe(network=anvil_network, transaction=other).known is False
    assert (reader.reads, reader.joined) == (1, 1)
    reader.observe(network=anvil_network, transaction=unknown)  # read in line
    assert (reader.reads, reader.joined) == (2, 1)
    down = PaymentReader(sources={anvil_network: JsonRpcSource(url=f"http://127.0.0.1:{free_port()}", timeout=1.0)})
    assert down.prefetch(network=anvil_network, transaction=unknown) is False  # could not send: left to the check
    with pytest.raises(ChainUnavailable):
        down.observe(network=anvil_network, transaction=unknown)


def test_a_kept_alive_connection_the_node_closed_is_retried_once(anvil_node: AnvilNode, anvil_network: str) -> None:
    source = JsonRpcSource(url=anvil_node.url)
    tx = "0x" + "0a" * 32
    assert source.observe(network=anvil_network, transaction=tx).known is False
    [conn] = source._pool._idle
    assert conn.sock is not None
    conn.sock.shutdown(socket.SHUT_RDWR)  # as if the node had closed it while idle
    pending = source.begin(network=anvil_network, transaction=tx)
    assert pending.finish().known is False
    with pytest.raises(ChainUnavailable):
        pending.finish()  # an answer is read once
    source.close()


def test_a_mined_transaction_is_read_in_one_request_pending_and_unknown_in_two(
    anvil_node: AnvilNode, anvil_w3: Web3, anvil_network: str
) -> None:
    source = JsonRpcSource(url=anvil_node.url)
    asked: list[list[str]] = []
    exchange = source._exchange

    def counted(calls: list[tuple[str, list[Any]]], *, network: str) -> Any:
        asked.append([method for method, _ in calls])
        return exchange(calls, network=network)

    source._exchange = counted  # type: ignore[method-assign]
    sender = anvil_w3.eth.accounts[0]
    anvil_node.rpc("evm_setAutomine", [False])
    try:
        tx = anvil_w3.eth.send_transaction({"from": sender, "to": sender, "value": Wei(1)}).to_0x_hex()
        in_pool = source.observe(network=anvil_network, transaction=tx)
        assert (in_pool.known, in_pool.mined, in_pool.confirmations) == (True, False, 0)
        assert asked == [["eth_getTransactionReceipt", "eth_blockNumber"], ["eth_getTransactionByHash"]]
        anvil_node.rpc("evm_mine", [])
    finally:
        anvil_node.rpc("evm_setAutomine", [True])
    asked.clear()
    mined = source.begin(network=anvil_network, transaction=tx).finish()  # as a read sent ahead is taken
    assert (mined.known, mined.mined, mined.status, mined.tx_from) == (True, True, 1, sender.lower())
    assert mined.block_number == mined.head == anvil_w3.eth.block_number
    assert asked == [["eth_getTransactionReceipt", "eth_blockNumber"]]  # the settled case: one round trip
    asked.clear()
    unknown = source.observe(network=anvil_network, transaction="0x" + "0d" * 32)
    assert (unknown.known, unknown.mined) == (False, False)
    assert asked == [["eth_getTransactionReceipt", "eth_blockNumber"], ["eth_getTransactionByHash"]]
    source.close()
