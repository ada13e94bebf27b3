"""Reviews indexed from chain (``omatrust sync``) get the same payment check: a review attested directly on the
embedded chain whose receipt names its real settlement is payment-backed; one naming someone else's payment is
stored (chain data is never refused) with the mismatch on its proof, as a verified purchase only."""

from __future__ import annotations

import json
from collections.abc import Callable

from eth_account import Account

from service.chain.codec import encode_review
from service.chain.embedded import EmbeddedChain
from service.chain.indexer import ReviewIndexer
from service.chain.token import mint_to
from service.cli.demo_kit import Merchant, Reviewer
from service.dids import did_address
from service.domain import Review
from service.workflows.sync import sync_chain
from tests.payments.conftest import PRICE, Service, receipt_for
from tests.payments.settle import Settler


def _attest_directly(chain: EmbeddedChain, reviewer: Reviewer, subject: str, proof: dict) -> str:  # type: ignore[type-arg]
    """The reviewer attests on chain themselves (another client, not our publisher)."""
    funder = chain.dev_accounts[1]
    with chain.lock:
        chain.w3.eth.send_transaction({"from": funder.address, "to": reviewer.address, "value": 10**18})
    review = Review(subject=subject, version="", rating_value=5, review_body="paid and reviewed elsewhere",
                    screenshot_urls=(), proofs=(json.dumps(proof, separators=(",", ":")),))  # fmt: skip
    client = chain.client(relayer=reviewer.account)
    return client.attest_direct(data=encode_review(review=review), recipient=did_address(subject)).uid.lower()


def test_synced_reviews_are_payment_checked(
    make_service: Callable[..., Service], merchant: Merchant, reviewer: Reviewer, settler: Settler,
    chain: EmbeddedChain,
) -> None:  # fmt: skip
    svc = make_service()
    start = chain.w3.eth.block_number + 1
    tx = settler.pay(payer=reviewer.account, pay_to=merchant.address, amount=PRICE)
    _attest_directly(chain, reviewer, merchant.did, receipt_for(merchant, reviewer, tx))
    # Another reviewer names the first one's payment: stored (never refused), not payment-backed.
    freeloader = Reviewer(account=Account.create())
    mint_to(w3=chain.w3, holder=freeloader.address, amount=PRICE, lock=chain.lock)
    _attest_directly(chain, freeloader, merchant.did, receipt_for(merchant, freeloader, tx))

    report = sync_chain(rt=svc.rt, indexer=ReviewIndexer(client=svc.rt.eas), from_block=start)
    assert report.stored == 2
    listed = svc.client.get(f"/v1/services/{merchant.did.replace('%', '%25')}/reviews").json()["items"]
    by_attester = {r["attester"]: r for r in listed}
    paid = by_attester[reviewer.address.lower()]
    assert (paid["source"], paid["paymentBacked"], paid["evidence"]) == ("chain", True, "payment-backed")
    assert paid["proofs"][0]["payment"]["method"] == "eip3009"
    other = by_attester[freeloader.address.lower()]
    assert (other["paymentBacked"], other["evidence"], other["verifiedPurchase"]) == (False, "verified", True)
    assert (other["proofs"][0]["payment"]["status"], other["proofs"][0]["payment"]["reason"]) == (
        "mismatch", "payment-wrong-payer")  # fmt: skip
