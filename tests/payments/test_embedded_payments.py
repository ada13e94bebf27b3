"""Payment-backed reviews on the embedded chain: real EIP-3009 settlements of test USDC by the x402 facilitator,
checked by the service at submission."""

from __future__ import annotations

from collections.abc import Callable

from eth_account import Account

from service.chain.embedded import EmbeddedChain
from service.chain.token import mint_to
from service.cli.demo_kit import Merchant, Reviewer
from tests.payments.conftest import PRICE, Service, receipt_for, signed_offer
from tests.payments.settle import Settler


def test_receipt_naming_its_settlement_is_payment_backed(
    make_service: Callable[..., Service], merchant: Merchant, reviewer: Reviewer, settler: Settler
) -> None:
    svc = make_service()
    tx = settler.pay(payer=reviewer.account, pay_to=merchant.address, amount=PRICE)
    proofs = [receipt_for(merchant, reviewer, tx)]
    resp = reviewer.submit(svc.client, subject=merchant.did, ratingValue=5, proofs=proofs)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["paymentBacked"], body["evidence"], body["verifiedPurchase"]) == (True, "payment-backed", True)
    payment = body["proofs"][0]["payment"]
    assert payment["status"] == "settled"
    assert payment["method"] == "eip3009"  # transferWithAuthorization: AuthorizationUsed by the payer
    assert payment["payTo"] == merchant.address.lower()
    assert payment["amount"] == str(PRICE)  # no offer attached: recorded as observed
    assert payment["transaction"] == tx
    assert payment["confirmations"] >= 1
    assert svc.client.get(f"/v1/reviews/{body['id']}").json()["paymentBacked"] is True


def test_with_offer_the_terms_come_from_the_offer(
    make_service: Callable[..., Service], merchant: Merchant, reviewer: Reviewer, settler: Settler,
    embedded_network: str,
) -> None:  # fmt: skip
    svc = make_service()
    tx = settler.pay(payer=reviewer.account, pay_to=merchant.address, amount=PRICE)
    offer = signed_offer(merchant, network=embedded_network)
    resp = reviewer.submit(svc.client, subject=merchant.did, ratingValue=4,
                           proofs=[offer, receipt_for(merchant, reviewer, tx)])  # fmt: skip
    assert resp.status_code == 201, resp.text
    assert resp.json()["paymentBacked"] is True


def test_repeat_checks_read_the_chain_once(
    make_service: Callable[..., Service], merchant: Merchant, reviewer: Reviewer, settler: Settler
) -> None:
    svc = make_service()
    tx = settler.pay(payer=reviewer.account, pay_to=merchant.address, amount=PRICE)
    network = merchant.network
    first = svc.payments.observe(network=network, transaction=tx)
    reads = svc.payments.reads
    assert svc.payments.observe(network=network, transaction=tx.upper().replace("0X", "0x")) == first
    assert svc.payments.reads == reads  # settled: cached by (network, tx)
    svc.payments.observe(network=network, transaction=tx, fresh=True)
    assert svc.payments.reads == reads + 1  # re-verification reads again


def test_paid_by_someone_else_is_refused(
    make_service: Callable[..., Service], merchant: Merchant, reviewer: Reviewer, settler: Settler,
    chain: EmbeddedChain,
) -> None:  # fmt: skip
    svc = make_service()
    other = Account.create()
    mint_to(w3=chain.w3, holder=other.address, amount=PRICE, lock=chain.lock)
    tx = settler.pay(payer=other, pay_to=merchant.address, amount=PRICE)
    proofs = [receipt_for(merchant, reviewer, tx)]
    resp = reviewer.submit(svc.client, subject=merchant.did, ratingValue=5, proofs=proofs)
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "payment-mismatch"
    assert "payment-wrong-payer" in resp.json()["detail"]


def test_unknown_transaction_is_refused(
    make_service: Callable[..., Service], merchant: Merchant, reviewer: Reviewer
) -> None:
    svc = make_service()
    resp = reviewer.submit(svc.client, subject=merchant.did, ratingValue=5,
                           proofs=[receipt_for(merchant, reviewer, "0x" + "5a" * 32)])  # fmt: skip
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "payment-not-found"
