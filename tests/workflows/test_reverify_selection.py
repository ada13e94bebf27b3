"""``omatrust reverify`` selections (--subject, --since, --status) and offer-payto judged as of issuedAt."""

from __future__ import annotations

import json

from sqlmodel import Session, select

from service.cli.demo_kit import USDC_BASE, Merchant, Reviewer
from service.domain import ArtifactKind, OfferPayload, ReceiptPayload
from service.proofs import (
    evm_address,
    generate_evm_private_key,
    proof_wrapper,
    sign_offer_eip712,
    sign_receipt_eip712,
)
from service.store.tables import ReviewRow
from service.workflows.reverify import ReverifyOptions, reverify
from tests.workflows.conftest import BatchEnv, Clock


def _run(env: BatchEnv, **options: object) -> list[str]:
    seen: list[str] = []
    clock = Clock()
    clock.offset = 3600
    reverify(engine=env.engine, resolver=env.rt.resolver, controllers=env.rt.controllers, policy=env.rt.policy,
             clock=clock, options=ReverifyOptions(workers=0, **options), on_chunk=seen.extend)  # type: ignore[arg-type]
    return seen


def test_subject_since_and_status_select_reviews(batch_env: BatchEnv) -> None:
    env = batch_env
    env.clock.offset = -20_000
    old = env.verified_review(issued_ago=600)
    env.clock.offset = 0
    new = env.verified_review(issued_ago=600)
    elsewhere = env.submit(Reviewer(), proofs=[], subject="did:web:elsewhere.example")
    with Session(env.engine) as s:
        new_time = s.get(ReviewRow, new).review_time  # type: ignore[union-attr]

    assert sorted(_run(env, subject=env.merchant.did)) == sorted([old, new])
    assert sorted(_run(env, subject="did:web:ELSEWHERE.example")) == [elsewhere]  # matched normalized
    assert sorted(_run(env, since=new_time)) == sorted([new, elsewhere])

    # A proof stored while a look-up was failing: --status indeterminate picks exactly its review and settles it.
    env.set_proof_columns(old, 0, status="indeterminate", reason="fetch-timeout")
    assert _run(env, status="indeterminate") == [old]
    assert env.proofs(old)[0].status == "verified"
    assert [(h.before_status, h.before_reason, h.after_status) for h in env.history(old)] == [
        ("indeterminate", "fetch-timeout", "verified")
    ]
    assert _run(env, status="indeterminate") == []


def test_offer_payto_receipt_stays_verified_when_the_offer_key_is_rotated(batch_env: BatchEnv) -> None:
    env, m = batch_env, batch_env.merchant
    # The did.json lists the offer signer (the merchant's key) only; receipts are signed by the offer's payTo.
    pay_key = generate_evm_private_key()
    pay_to = evm_address(private_key=pay_key)
    reviewer = Reviewer()
    now = int(env.clock())
    offer = OfferPayload(version=1, resource_url=m.url(), scheme="exact", network=m.network, asset=USDC_BASE,
                         pay_to=pay_to, amount="10000", valid_until=0)  # fmt: skip
    receipt = ReceiptPayload(version=1, network=m.network, resource_url=m.url(), payer=reviewer.address,
                             issued_at=now - 300, transaction="")  # fmt: skip
    proofs = [
        proof_wrapper(artifact=sign_offer_eip712(payload=offer, private_key=m.evm_key), kind=ArtifactKind.OFFER),
        proof_wrapper(artifact=sign_receipt_eip712(payload=receipt, private_key=pay_key), kind=ArtifactKind.RECEIPT),
    ]
    review_id = env.submit(reviewer, proofs=proofs)
    assert [(p.status, p.tier) for p in env.proofs(review_id)] == [("verified", "did-document"),
                                                                    ("verified", "offer-payto")]  # fmt: skip

    env.host.set_document(Merchant(host=env.host.host).did_document())  # the offer signer's key is gone
    seen = _run(env)

    assert seen == [review_id]
    assert [(p.status, p.tier) for p in env.proofs(review_id)] == [("verified", "did-document"),
                                                                    ("verified", "offer-payto")]  # fmt: skip
    assert env.review(review_id).verified_purchase is True
    assert not env.history()

    # Without the stored evidence for the offer, nothing vouches for the receipt signer any more.
    env.set_proof_columns(review_id, 0, evidence_hash="0" * 64)
    _run(env)
    assert [p.status for p in env.proofs(review_id)] == ["unauthorized", "unauthorized"]
    assert env.review(review_id).verified_purchase is False
    assert json.loads(env.review(review_id).proofs_json[1])["proofType"] == "x402-receipt"
    with Session(env.engine) as s:
        assert s.exec(select(ReviewRow)).one().evidence == "unauthorized"
