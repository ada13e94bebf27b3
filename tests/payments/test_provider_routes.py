"""The x402 ``reviews`` provider endpoints, on the embedded chain with real settlements: the ``read`` link lists the
reviews of a resource's service with payment-backed counts; the ``write`` link identifies a payment from chain."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from service.cli.demo_kit import Merchant, Reviewer
from service.x402.reviews import ReviewsExtension
from tests.payments.conftest import PRICE, Service, receipt_for
from tests.payments.settle import Settler

JSON = {"Accept": "application/json"}


def test_read_link_lists_reviews_with_payment_backed_counts(
    make_service: Callable[..., Service], merchant: Merchant, reviewer: Reviewer, settler: Settler
) -> None:
    svc = make_service()
    tx = settler.pay(payer=reviewer.account, pay_to=merchant.address, amount=PRICE)
    assert reviewer.submit(svc.client, subject=merchant.did, ratingValue=5,
                           proofs=[receipt_for(merchant, reviewer, tx)]).status_code == 201  # fmt: skip
    other = Reviewer()
    assert other.submit(svc.client, subject=merchant.did, ratingValue=2).status_code == 201  # no proof
    # Exactly the link the merchant extension emits in PAYMENT-REQUIRED.
    read = ReviewsExtension(provider_url="https://reviews.example").read_link(merchant.url("/weather?city=x"))
    resp = svc.client.get(read.removeprefix("https://reviews.example"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["service"] == merchant.did
    assert body["counts"] == {"live": 2, "verifiedPurchase": 1, "paymentBacked": 1}
    assert sorted(r["paymentBacked"] for r in body["reviews"]) == [False, True]
    assert body["reputation"] == f"/v1/services/{quote(merchant.did, safe='')}/reputation"
    assert svc.client.get("/v1/resources/reviews", params={"url": "not a url"}).status_code == 422


def test_write_link_identifies_the_payment_from_chain(
    make_service: Callable[..., Service], merchant: Merchant, reviewer: Reviewer, settler: Settler
) -> None:
    svc = make_service()
    tx = settler.pay(payer=reviewer.account, pay_to=merchant.address, amount=PRICE)
    write = ReviewsExtension(provider_url="https://reviews.example").write_link(network=merchant.network,
                                                                                  transaction=tx)  # fmt: skip
    path = write.removeprefix("https://reviews.example")
    body = svc.client.get(path, headers=JSON).json()
    assert (body["status"], body["payer"], body["payTo"], body["amount"]) == (
        "settled", reviewer.address.lower(), merchant.address.lower(), str(PRICE))  # fmt: skip
    assert body["transfers"][0]["method"] == "eip3009"
    assert body["prepare"]["url"] == "/v1/reviews/prepare"
    assert body["prepare"]["body"]["attester"] == reviewer.address.lower()
    page = svc.client.get(path, headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert f'<dd id="payer">{reviewer.address.lower()}</dd>' in page.text
    assert f'<dd id="amount">{PRICE}</dd>' in page.text
    assert 'id="prepare"' in page.text


def test_write_link_problems(make_service: Callable[..., Service], merchant: Merchant) -> None:
    svc = make_service()
    unknown = svc.client.get(f"/r/{merchant.network}/0x{'ab' * 32}", headers=JSON)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "payment-not-found")
    elsewhere = svc.client.get(f"/r/eip155:999999/0x{'ab' * 32}", headers=JSON)
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "network-not-configured")
    bad = svc.client.get(f"/r/{merchant.network}/0x1234", headers=JSON)
    assert (bad.status_code, bad.json()["code"]) == (422, "bad-field-value")
