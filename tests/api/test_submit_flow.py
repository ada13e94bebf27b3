"""Submit → verify → bind → store → publish, through the real app, DB, embedded chain and did:web host."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.chain.embedded import EmbeddedChain
from service.cli.demo_kit import Merchant, Reviewer
from service.dids import did_address
from service.domain import USER_REVIEW_SCHEMA_UID, Reason
from service.errors import ChainRejected, ChainUnavailable
from service.store.engine import session_scope
from service.store.tables import DidSnapshotRow
from service.wiring import Wired
from tests.api.conftest import Clock, wait_confirmed


def test_verified_purchase_lands_on_chain_with_reviewer_as_attester(
    client: TestClient, merchant: Merchant, reviewer: Reviewer, chain: EmbeddedChain
) -> None:
    receipt = merchant.receipt(payer=reviewer.address, issued_at=int(time.time()) - 60)
    resp = reviewer.submit(client, subject=merchant.did, ratingValue=5, reviewBody="fast and correct", proofs=[receipt])
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["verifiedPurchase"] is True
    assert body["evidence"] == "verified"
    assert body["proofs"][0]["status"] == "verified"
    assert body["proofs"][0]["tier"] == "did-document"
    assert body["proofs"][0]["signer"].lower() == merchant.address.lower()
    assert resp.headers["location"] == f"/v1/reviews/{body['id']}"

    done = wait_confirmed(client, body["id"])
    assert done["attestation"]["state"] == "confirmed", done["attestation"]
    uid = done["attestation"]["uid"]

    record = chain.client().get_attestation(uid=uid)
    assert record is not None
    assert record.attester.lower() == reviewer.address.lower()
    assert record.recipient.lower() == did_address(merchant.did)
    assert record.schema.lower() == USER_REVIEW_SCHEMA_UID


def test_jws_receipt_is_a_verified_purchase(client: TestClient, merchant: Merchant, reviewer: Reviewer) -> None:
    receipt = merchant.receipt(payer=reviewer.address, issued_at=int(time.time()) - 60, fmt="jws")
    resp = reviewer.submit(client, subject=merchant.did, ratingValue=4, proofs=[receipt])
    assert resp.status_code == 201, resp.text
    proof = resp.json()["proofs"][0]
    assert (proof["status"], proof["format"], proof["signer"]) == ("verified", "jws", merchant.kid)
    assert resp.json()["verifiedPurchase"] is True


def test_review_without_proof_is_accepted_unverified(client: TestClient, reviewer: Reviewer) -> None:
    resp = reviewer.submit(client, subject="did:web:api.example.com", ratingValue=2, reviewBody="slow")
    assert resp.status_code == 201, resp.text
    assert resp.json()["verifiedPurchase"] is False
    assert resp.json()["evidence"] == "none"
    assert wait_confirmed(client, resp.json()["id"])["attestation"]["state"] == "confirmed"


def test_newer_review_supersedes_and_listing_shows_live_only(
    client: TestClient, merchant: Merchant, reviewer: Reviewer
) -> None:
    first = reviewer.submit(client, subject=merchant.did, ratingValue=2).json()
    second = reviewer.submit(client, subject=merchant.did, ratingValue=5).json()
    assert client.get(f"/v1/reviews/{first['id']}").json()["supersededBy"] == second["id"]
    page = client.get(f"/v1/services/{merchant.did.replace('%', '%25')}/reviews").json()
    assert [r["id"] for r in page["items"]] == [second["id"]]


def test_same_signed_request_twice_is_idempotent(client: TestClient, reviewer: Reviewer) -> None:
    prepared = reviewer.prepare(client, subject="did:web:api.example.com", ratingValue=3).json()
    body = reviewer.signed_body(prepared)
    a = client.post("/v1/reviews", json=body)
    b = client.post("/v1/reviews", json=body)
    assert a.status_code == 201, a.text
    assert b.status_code == 201, b.text
    assert a.json()["id"] == b.json()["id"]


def test_a_repeat_that_would_now_be_refused_is_answered_with_its_review(
    client: TestClient, merchant: Merchant, reviewer: Reviewer, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same signed request, repeated after its deadline and its receipt's freshness have passed, then also with
    the chain unreadable: answered with the review it created, not refused — the early checks (which skip the
    outbox when a chain read matches the nonce) refuse it, and the refusal is checked against the outbox."""
    receipt = merchant.receipt(payer=reviewer.address, issued_at=int(time.time()) - 60)
    prepared = reviewer.prepare(client, subject=merchant.did, ratingValue=4, proofs=[receipt]).json()
    body = reviewer.signed_body(prepared)
    first = client.post("/v1/reviews", json=body)
    assert first.status_code == 201, first.text
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    clock.offset = 30 * 24 * 3600.0
    refusals: list[str] = []
    check = rt.eas.check_delegated

    def checked(**kw: Any) -> None:
        try:
            check(**kw)
        except ChainRejected as exc:
            refusals.append(exc.reason.value)
            raise

    monkeypatch.setattr(rt.eas, "check_delegated", checked)
    expired = client.post("/v1/reviews", json=body)
    assert expired.status_code == 201, expired.text
    assert expired.json()["id"] == first.json()["id"]
    assert refusals == ["delegation-expired"]  # refused by the early checks, answered from the outbox

    def unreachable(*, attester: str) -> int:
        raise ChainUnavailable(Reason.RPC_FAILED, "the node is down")

    rt.nonces.clear()
    monkeypatch.setattr(rt.eas, "get_nonce", unreachable)
    again = client.post("/v1/reviews", json=body)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]


def test_attestation_config_describes_the_domain(client: TestClient, chain: EmbeddedChain) -> None:
    cfg = client.get("/v1/attestation-config").json()
    assert cfg["chainId"] == chain.w3.eth.chain_id
    assert cfg["schemaUid"] == USER_REVIEW_SCHEMA_UID
    assert cfg["domain"]["name"] == "EAS"
    assert cfg["domain"]["verifyingContract"].lower() == cfg["eas"].lower()


def test_the_201_answer_is_the_stored_review(client: TestClient, merchant: Merchant, reviewer: Reviewer) -> None:
    """The submit answer is built from the rows just written (no re-read): it must say what a read says."""
    receipt = merchant.receipt(payer=reviewer.address, issued_at=int(time.time()) - 60)
    prepared = reviewer.prepare(client, subject=merchant.did, ratingValue=4, reviewBody="b", proofs=[receipt]).json()
    body = reviewer.signed_body(prepared)
    posted = client.post("/v1/reviews", json=body)
    assert posted.status_code == 201, posted.text
    assert posted.headers["content-type"] == "application/json"
    answer = posted.json()
    assert answer["attestation"] == {"state": "pending", "uid": None, "txHash": None, "error": None}
    read = client.get(f"/v1/reviews/{answer['id']}").json()
    assert {k: v for k, v in answer.items() if k != "attestation"} == {
        k: v for k, v in read.items() if k != "attestation"
    }
    assert answer["proofs"][0]["replayKey"]
    assert answer["verifiedPurchase"] is True
    # the same signed request again: answered from the store, same review
    again = client.post("/v1/reviews", json=body)
    assert again.status_code == 201, again.text
    assert again.headers["location"] == posted.headers["location"]
    assert {k: v for k, v in again.json().items() if k != "attestation"} == {
        k: v for k, v in read.items() if k != "attestation"
    }


def test_a_did_document_is_snapshotted_once_then_known(client: TestClient, merchant: Merchant, wired: Wired) -> None:
    """The first review citing a DID document stores its snapshot and the process remembers it as stored (later
    reviews citing it skip the INSERT)."""
    rt = wired.runtime
    hashes = []
    for _ in range(2):
        reviewer = Reviewer()
        receipt = merchant.receipt(payer=reviewer.address, issued_at=int(time.time()) - 60)
        resp = reviewer.submit(client, subject=merchant.did, ratingValue=5, proofs=[receipt])
        assert resp.status_code == 201, resp.text
        hashes.append(resp.json()["proofs"][0]["evidenceHash"])
    assert hashes[0] == hashes[1]
    assert hashes[0] in rt.kept_snapshots
    with session_scope(rt.engine) as session:
        row = session.get(DidSnapshotRow, hashes[0])
        assert row is not None
        assert row.did == merchant.did


def test_requests_are_timed_by_route_template_method_and_status(client: TestClient, reviewer: Reviewer) -> None:
    resp = reviewer.submit(client, subject="did:web:api.example.com", ratingValue=4)
    assert resp.status_code == 201, resp.text
    assert client.get(f"/v1/reviews/{resp.json()['id']}").status_code == 200
    assert client.get("/v1/reviews/" + "0" * 32).status_code == 404
    assert client.get("/no/such/path").status_code == 404
    text = client.get("/metrics").text
    for labels in ('method="POST",route="/v1/reviews",status="2xx"',
                   'method="GET",route="/v1/reviews/{review_id}",status="2xx"',
                   'method="GET",route="/v1/reviews/{review_id}",status="4xx"',
                   'method="GET",route="unmatched",status="4xx"'):  # fmt: skip
        assert f"omatrust_http_request_seconds_count{{{labels}}} 1.0" in text, labels
