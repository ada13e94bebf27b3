"""Every rejection: its HTTP status, a problem+json body and its stable ``code`` — and nothing stored."""

from __future__ import annotations

import time
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.api.app import create_app
from service.chain.codec import encode_review
from service.cli.demo_kit import Merchant, Reviewer
from service.config import Settings
from service.domain import Review
from service.proofs import parse_artifact
from service.store.engine import session_scope
from service.store.reviews import claim_receipts
from service.store.tables import ReviewRow
from service.wiring import Wired
from tests.support.didweb_host import DidWebHost

NOW = int(time.time())


def assert_problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"] == f"urn:omatrust:problem:{code}"
    assert body["title"]
    return body


def count_reviews(client: TestClient, did: str) -> int:
    return len(client.get(f"/v1/services/{did.replace('%', '%25')}/reviews").json()["items"])


def submit_data(client: TestClient, reviewer: Reviewer, review: Review, *, deadline: int | None = None) -> Any:
    """Sign and submit arbitrary attestation data (bypassing prepare's request validation)."""
    data = encode_review(review=review)
    deadline = deadline or NOW + 3600
    eas = client.app.state.runtime.eas  # type: ignore[attr-defined]
    typed = eas.build_attest_typed_data(
        attester=reviewer.address, data=data, recipient="0x" + "11" * 20, deadline=deadline, nonce=0
    )
    body = {"attester": reviewer.address, "data": "0x" + data.hex(), "deadline": deadline, "nonce": 0}
    return client.post("/v1/reviews", json=body | {"signature": reviewer.sign(typed)})


def review(**overrides: Any) -> Review:
    fields: dict[str, Any] = {
        "subject": "did:web:api.example.com", "version": "", "rating_value": 4, "review_body": "",
        "screenshot_urls": (), "proofs": (),
    }  # fmt: skip
    fields.update(overrides)
    return Review(**fields)


# -- request shape ---------------------------------------------------------------------------------------------


def test_request_invalid(client: TestClient, reviewer: Reviewer) -> None:
    body = {"attester": "0x12", "review": {"subject": "did:web:a.example", "ratingValue": 3}}
    problem = assert_problem(client.post("/v1/reviews/prepare", json=body), 422, "request-invalid")
    assert problem["errors"]


def test_body_too_large(wired: Wired) -> None:
    app = create_app(Settings(max_body_bytes=1024), wired=wired)
    with TestClient(app) as c:
        assert_problem(c.post("/v1/reviews", content=b"{" + b" " * 4096 + b"}"), 413, "body-too-large")


def test_rate_limited_per_attester(wired: Wired, reviewer: Reviewer) -> None:
    app = create_app(Settings(rate_limit_per_minute=2), wired=wired)
    with TestClient(app) as c:
        for _ in range(2):
            assert reviewer.prepare(c, subject="did:web:a.example", ratingValue=3).status_code == 200
        resp = reviewer.prepare(c, subject="did:web:a.example", ratingValue=3)
        assert_problem(resp, 429, "rate-limited")
        assert int(resp.headers["retry-after"]) >= 1
        assert Reviewer().prepare(c, subject="did:web:a.example", ratingValue=3).status_code == 200


def test_not_found(client: TestClient) -> None:
    assert_problem(client.get("/v1/reviews/nope"), 404, "not-found")


def test_bad_cursor(client: TestClient) -> None:
    assert_problem(client.get("/v1/services/did:web:a.example/reviews?cursor=zzz"), 422, "bad-field-value")


# -- review content (schema userreview 1.3.0), checked on the decoded attestation data ---------------------------


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"subject": "not-a-did"}, "invalid-subject"),
        ({"rating_value": 0}, "invalid-rating"),
        ({"rating_value": 6}, "invalid-rating"),
        ({"review_body": "x" * 501}, "review-body-too-long"),
        ({"screenshot_urls": ("javascript:alert(1)",)}, "invalid-screenshots"),
        ({"version": "v1.2"}, "invalid-service-version"),
        ({"proofs": tuple("{}" for _ in range(9))}, "invalid-review"),
    ],
)
def test_review_rules(client: TestClient, reviewer: Reviewer, overrides: dict[str, Any], code: str) -> None:
    assert_problem(submit_data(client, reviewer, review(**overrides)), 422, code)


def test_undecodable_data(client: TestClient, reviewer: Reviewer) -> None:
    resp = client.post(
        "/v1/reviews",
        json={"attester": reviewer.address, "data": "0x1234", "deadline": NOW + 60, "nonce": 0,
              "signature": "0x" + "11" * 65},
    )  # fmt: skip
    assert_problem(resp, 422, "attestation-data-invalid")


# -- delegated signature ---------------------------------------------------------------------------------------


def test_delegation_signer_mismatch(client: TestClient, reviewer: Reviewer) -> None:
    prepared = reviewer.prepare(client, subject="did:web:a.example", ratingValue=3).json()
    body = Reviewer().signed_body(prepared) | {"attester": reviewer.address}
    assert_problem(client.post("/v1/reviews", json=body), 422, "delegation-signer-mismatch")


def test_delegation_tampered_data(client: TestClient, reviewer: Reviewer) -> None:
    prepared = reviewer.prepare(client, subject="did:web:a.example", ratingValue=3).json()
    body = reviewer.signed_body(prepared)
    body["data"] = "0x" + encode_review(review=review(subject="did:web:a.example", rating_value=5)).hex()
    assert_problem(client.post("/v1/reviews", json=body), 422, "delegation-signer-mismatch")


def test_delegation_expired(client: TestClient, reviewer: Reviewer) -> None:
    resp = reviewer.submit(client, subject="did:web:a.example", ratingValue=3, deadline=NOW - 10)
    assert_problem(resp, 422, "delegation-expired")


def test_delegation_nonce_replayed(client: TestClient, reviewer: Reviewer) -> None:
    prepared = reviewer.prepare(client, subject="did:web:a.example", ratingValue=3).json()
    first = reviewer.signed_body(prepared)
    assert client.post("/v1/reviews", json=first).status_code == 201
    # Same nonce, different content: the nonce is already taken by the first request.
    prepared["typedData"]["message"]["deadline"] += 1
    second = reviewer.signed_body(prepared)
    assert_problem(client.post("/v1/reviews", json=second), 422, "delegation-nonce")


def test_delegation_nonce_spent_by_a_confirmed_request_despite_a_stale_chain_read(
    client: TestClient, reviewer: Reviewer
) -> None:
    """The nonce our own outbox has spent and seen confirmed is refused although this process's recent chain read
    (older than the confirmation) still says it is next: the write checks against every request of ours."""
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    prepared = reviewer.prepare(client, subject="did:web:a.example", ratingValue=3).json()
    assert client.post("/v1/reviews", json=reviewer.signed_body(prepared)).status_code == 201
    with session_scope(rt.engine) as session:  # published meanwhile (this test's chain is not advanced)
        session.execute(text("UPDATE outbox SET state = 'confirmed'"))
    assert rt.nonces.get(reviewer.address.lower()) == 0  # the first request's own chain read, now stale
    prepared["typedData"]["message"]["deadline"] += 1
    assert_problem(client.post("/v1/reviews", json=reviewer.signed_body(prepared)), 422, "delegation-nonce")
    fresh = reviewer.prepare(client, subject="did:web:a.example", ratingValue=3).json()  # prepare says the same
    assert int(fresh["typedData"]["message"]["nonce"]) == 1


# -- proofs and their binding to the review ---------------------------------------------------------------------


def test_payer_mismatch(client: TestClient, merchant: Merchant, reviewer: Reviewer) -> None:
    stolen = merchant.receipt(payer=Account.create().address, issued_at=NOW - 60)
    resp = reviewer.submit(client, subject=merchant.did, ratingValue=5, proofs=[stolen])
    assert_problem(resp, 422, "payer-mismatch")
    assert count_reviews(client, merchant.did) == 0


def test_subject_mismatch(client: TestClient, merchant: Merchant, reviewer: Reviewer) -> None:
    receipt = merchant.receipt(payer=reviewer.address, issued_at=NOW - 60)
    resp = reviewer.submit(client, subject="did:web:other.example", ratingValue=5, proofs=[receipt])
    assert_problem(resp, 422, "subject-mismatch")


def test_receipt_stale(client: TestClient, merchant: Merchant, reviewer: Reviewer) -> None:
    receipt = merchant.receipt(payer=reviewer.address, issued_at=NOW - 8 * 24 * 3600)
    assert_problem(reviewer.submit(client, subject=merchant.did, ratingValue=5, proofs=[receipt]), 422, "receipt-stale")


def test_receipt_from_future(client: TestClient, merchant: Merchant, reviewer: Reviewer) -> None:
    receipt = merchant.receipt(payer=reviewer.address, issued_at=NOW + 3600)
    resp = reviewer.submit(client, subject=merchant.did, ratingValue=5, proofs=[receipt])
    assert_problem(resp, 422, "receipt-from-future")


def test_receipt_replayed_is_a_conflict(client: TestClient, wired: Wired, merchant: Merchant) -> None:
    """A receipt already backing another live review → 409. Through the API alone this needs two concurrent
    submissions; here the holder is planted as a review indexed under a legacy subject form."""
    payer = Reviewer()
    receipt = merchant.receipt(payer=payer.address, issued_at=NOW - 60)
    replay_key = parse_artifact(data=receipt).replay_key
    with session_scope(wired.runtime.engine) as s:
        holder = ReviewRow(
            id="planted", subject="did:web:legacy.example", subject_normalized="did:web:legacy.example",
            did_address="0x" + "00" * 20, attester=payer.address.lower(), rating_value=5, data_hex="0x",
            review_time=NOW - 30, source="chain", created_at=NOW - 30,
        )  # fmt: skip
        s.add(holder)
        s.flush()
        claim_receipts(s, replay_keys=[replay_key], review=holder, superseding=None)
    resp = payer.submit(client, subject=merchant.did, ratingValue=5, proofs=[receipt])
    body = assert_problem(resp, 409, "receipt-replayed")
    assert "planted" in body["detail"]
    assert count_reviews(client, merchant.did) == 0


def test_same_payer_may_update_review_with_same_receipt(client: TestClient, merchant: Merchant) -> None:
    payer = Reviewer()
    receipt = merchant.receipt(payer=payer.address, issued_at=NOW - 60)
    first = payer.submit(client, subject=merchant.did, ratingValue=2, proofs=[receipt])
    second = payer.submit(client, subject=merchant.did, ratingValue=4, proofs=[receipt])
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["verifiedPurchase"] is True
    assert client.get(f"/v1/reviews/{first.json()['id']}").json()["supersededBy"] == second.json()["id"]


def test_self_review(client: TestClient, merchant: Merchant) -> None:
    owner = Reviewer(account=Account.from_key(merchant.evm_key))
    receipt = merchant.receipt(payer=owner.address, issued_at=NOW - 60)
    assert_problem(owner.submit(client, subject=merchant.did, ratingValue=5, proofs=[receipt]), 422, "self-review")


def test_invalid_jws_signature(client: TestClient, merchant: Merchant, reviewer: Reviewer) -> None:
    receipt = merchant.receipt(payer=reviewer.address, issued_at=NOW - 60, fmt="jws")
    header, payload, sig = receipt["proofObject"]["signature"].split(".")
    receipt["proofObject"]["signature"] = ".".join(
        [header, payload, sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")]
    )
    resp = reviewer.submit(client, subject=merchant.did, ratingValue=5, proofs=[receipt])
    assert_problem(resp, 422, "signature-invalid")


def test_malformed_proof_json(client: TestClient, merchant: Merchant, reviewer: Reviewer) -> None:
    assert_problem(reviewer.submit(client, subject=merchant.did, ratingValue=5, proofs=["{not json"]), 422,
                   "malformed-json")  # fmt: skip


def test_unsupported_proof_type_is_stored_not_counted(
    client: TestClient, merchant: Merchant, reviewer: Reviewer
) -> None:
    # (tx-interaction is checked on chain, evidence-pointer by fetching its document: tx-encoded-value is not verified)
    proofs = [{"proofType": "tx-encoded-value", "proofPurpose": "shared-control",
               "proofObject": {"chainId": "eip155:1", "txHash": "0x" + "ab" * 32}}]  # fmt: skip
    # Refused at prepare (it would be published for ever as "unsupported") unless the caller opts in.
    refused = reviewer.submit(client, subject=merchant.did, ratingValue=5, proofs=proofs)
    assert_problem(refused, 422, "unsupported-proof-type")
    body = {"attester": reviewer.address, "review": {"subject": merchant.did, "ratingValue": 5, "proofs": proofs},
            "allowUnsupported": True}  # fmt: skip
    prepared = client.post("/v1/reviews/prepare", json=body)
    assert prepared.status_code == 200, prepared.text
    resp = client.post("/v1/reviews", json=reviewer.signed_body(prepared.json()))
    assert resp.status_code == 201, resp.text
    assert resp.json()["proofs"][0]["status"] == "unsupported"
    assert resp.json()["verifiedPurchase"] is False


def test_unauthorized_signer_is_stored_not_verified(client: TestClient, didweb: DidWebHost, reviewer: Reviewer) -> None:
    rogue = Merchant(host=didweb.host)  # signs for the host, but its keys are not in the host's did.json
    didweb.set_document(Merchant(host=didweb.host).did_document())
    resp = reviewer.submit(client, subject=rogue.did, ratingValue=5,
                           proofs=[rogue.receipt(payer=reviewer.address, issued_at=NOW - 60)])  # fmt: skip
    assert resp.status_code == 201, resp.text
    proof = resp.json()["proofs"][0]
    assert (proof["status"], proof["signatureValid"]) == ("unauthorized", True)
    assert resp.json()["verifiedPurchase"] is False


def test_lookup_failure_is_503_and_stores_nothing(client: TestClient, didweb: DidWebHost, reviewer: Reviewer) -> None:
    merchant = Merchant(host=didweb.host)
    didweb.set("/.well-known/did.json", b"oops", status=500)
    proofs = [merchant.receipt(payer=reviewer.address, issued_at=NOW - 60, fmt="jws")]
    resp = reviewer.submit(client, subject=merchant.did, ratingValue=5, proofs=proofs)
    body = assert_problem(resp, 503, "fetch-http-status")
    assert resp.headers["retry-after"]
    assert "proofs[0]" in body["detail"]
    assert count_reviews(client, merchant.did) == 0


def test_deeply_nested_json_is_refused_before_parsing(client: TestClient) -> None:
    body = b"[" * 50_000 + b"]" * 50_000
    assert_problem(client.post("/v1/proofs/verify", content=body, headers={"content-type": "application/json"}),
                   422, "json-too-deep")  # fmt: skip
    # strings containing brackets don't count
    ok = client.post("/v1/proofs/verify", json={"format": "jws", "signature": "[" * 100})
    assert ok.status_code == 200
    assert client.get("/healthz").status_code == 200  # still alive
