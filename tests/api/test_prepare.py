"""POST /v1/reviews/prepare makes submitting hard to get wrong: bare x402 envelopes are wrapped (and end up verified
purchases), every check submit runs without the signature answers the same code at prepare, unknown proof types
need an explicit opt-in, and the error semantics (400 malformed body, invalid-rating, 422 + hint for a refusal by
configuration) hold."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.chain.codec import decode_review, encode_review
from service.cli.demo_kit import Merchant, Reviewer
from service.config import Settings
from service.dids import did_address
from service.domain import Review
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.proofs import parse_artifact
from service.store.engine import session_scope
from service.store.reviews import claim_receipts
from service.store.tables import ReviewRow
from service.wiring import Wired
from tests.api.test_rejections import assert_problem, count_reviews
from tests.support.didweb_host import DidWebHost

NOW = int(time.time())
README = Path(__file__).resolve().parents[2] / "README.md"


def direct_submit(client: TestClient, reviewer: Reviewer, review: Review, *, deadline: int | None = None) -> Any:
    """Sign and submit without prepare (what a client that skips it gets from submit)."""
    data = encode_review(review=review)
    deadline = deadline or NOW + 3600
    eas = client.app.state.runtime.eas  # type: ignore[attr-defined]
    nonce = eas.get_nonce(attester=reviewer.address)
    typed = eas.build_attest_typed_data(
        attester=reviewer.address, data=data, recipient=did_address(review.subject), deadline=deadline, nonce=nonce
    )
    body = {"attester": reviewer.address, "data": "0x" + data.hex(), "deadline": deadline, "nonce": nonce}
    return client.post("/v1/reviews", json=body | {"signature": reviewer.sign(typed)})


def prepare(client: TestClient, reviewer: Reviewer, **body: Any) -> Any:
    review = body.pop("review")
    return client.post("/v1/reviews/prepare", json={"attester": reviewer.address, "review": review, **body})


# -- bare envelopes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["eip712", "jws"])
def test_bare_receipt_is_wrapped_and_becomes_a_verified_purchase(
    client: TestClient, merchant: Merchant, reviewer: Reviewer, fmt: str
) -> None:
    wrapper = merchant.receipt(payer=reviewer.address, issued_at=NOW - 60, fmt=fmt)
    bare = wrapper["proofObject"]
    assert "proofType" not in bare
    resp = prepare(client, reviewer, review={"subject": merchant.did, "ratingValue": 5, "proofs": [bare]})
    assert resp.status_code == 200, resp.text
    prepared = resp.json()
    assert prepared["wrapped"] == [0]
    assert (prepared["evidence"], prepared["verifiedPurchase"]) == ("verified", True)
    signed_proof = json.loads(prepared["proofs"][0])
    assert signed_proof == {"proofType": "x402-receipt", "proofPurpose": "commercial-tx", "proofObject": bare,
                            "version": 1}  # fmt: skip
    # What the reviewer signs (and what is published) carries the wrapped form.
    assert decode_review(data=bytes.fromhex(prepared["data"][2:])).proofs == tuple(prepared["proofs"])
    submitted = client.post("/v1/reviews", json=reviewer.signed_body(prepared))
    assert submitted.status_code == 201, submitted.text
    review = submitted.json()
    assert review["verifiedPurchase"] is True
    assert review["evidence"] == "verified"
    assert review["proofs"][0]["proofType"] == "x402-receipt"
    assert review["proofs"][0]["status"] == "verified"


def test_wrapped_proofs_are_left_alone(client: TestClient, merchant: Merchant, reviewer: Reviewer) -> None:
    wrapper = merchant.receipt(payer=reviewer.address, issued_at=NOW - 60)
    resp = prepare(client, reviewer, review={"subject": merchant.did, "ratingValue": 5, "proofs": [wrapper]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["wrapped"] == []
    assert json.loads(resp.json()["proofs"][0]) == wrapper


# -- prepare answers what submit would ---------------------------------------------------------------------------


def _stolen(merchant: Merchant, reviewer: Reviewer) -> dict[str, Any]:
    return {"subject": merchant.did, "proofs": [merchant.receipt(payer=Account.create().address, issued_at=NOW - 60)]}


def _other_subject(merchant: Merchant, reviewer: Reviewer) -> dict[str, Any]:
    return {
        "subject": "did:web:other.example",
        "proofs": [merchant.receipt(payer=reviewer.address, issued_at=NOW - 60)],
    }


def _stale(merchant: Merchant, reviewer: Reviewer) -> dict[str, Any]:
    receipt = merchant.receipt(payer=reviewer.address, issued_at=NOW - 8 * 24 * 3600)
    return {"subject": merchant.did, "proofs": [receipt]}


def _future(merchant: Merchant, reviewer: Reviewer) -> dict[str, Any]:
    return {"subject": merchant.did, "proofs": [merchant.receipt(payer=reviewer.address, issued_at=NOW + 3600)]}


def _bad_rating(merchant: Merchant, reviewer: Reviewer) -> dict[str, Any]:
    return {"subject": merchant.did, "rating": 6}


@pytest.mark.parametrize(
    ("build", "code"),
    [
        (_stolen, "payer-mismatch"),
        (_other_subject, "subject-mismatch"),
        (_stale, "receipt-stale"),
        (_future, "receipt-from-future"),
        (_bad_rating, "invalid-rating"),
    ],
)
def test_prepare_refuses_with_submits_code(
    client: TestClient, merchant: Merchant, reviewer: Reviewer, build: Any, code: str
) -> None:
    case = build(merchant, reviewer)
    rating = case.get("rating", 5)
    proofs = case.get("proofs", [])
    at_prepare = prepare(client, reviewer, review={"subject": case["subject"], "ratingValue": rating, "proofs": proofs})
    assert_problem(at_prepare, 422, code)
    review = Review(subject=case["subject"], version="", rating_value=rating, review_body="", screenshot_urls=(),
                    proofs=tuple(json.dumps(p, separators=(",", ":")) for p in proofs))  # fmt: skip
    assert_problem(direct_submit(client, reviewer, review), 422, code)
    assert count_reviews(client, merchant.did) == 0


def test_prepare_refuses_an_expired_deadline(client: TestClient, reviewer: Reviewer) -> None:
    resp = prepare(client, reviewer, review={"subject": "did:web:a.example", "ratingValue": 3}, deadline=NOW - 1)
    assert_problem(resp, 422, "delegation-expired")
    review = Review(subject="did:web:a.example", version="", rating_value=3, review_body="", screenshot_urls=(),
                    proofs=())  # fmt: skip
    assert_problem(direct_submit(client, reviewer, review, deadline=NOW - 1), 422, "delegation-expired")


def test_prepare_refuses_a_self_review(client: TestClient, merchant: Merchant) -> None:
    owner = Reviewer(account=Account.from_key(merchant.evm_key))
    receipt = merchant.receipt(payer=owner.address, issued_at=NOW - 60)
    resp = prepare(client, owner, review={"subject": merchant.did, "ratingValue": 5, "proofs": [receipt]})
    assert_problem(resp, 422, "self-review")


def test_prepare_refuses_a_replayed_receipt(client: TestClient, wired: Wired, merchant: Merchant) -> None:
    payer = Reviewer()
    receipt = merchant.receipt(payer=payer.address, issued_at=NOW - 60)
    with session_scope(wired.runtime.engine) as s:
        holder = ReviewRow(
            id="planted", subject="did:web:legacy.example", subject_normalized="did:web:legacy.example",
            did_address="0x" + "00" * 20, attester=payer.address.lower(), rating_value=5, data_hex="0x",
            review_time=NOW - 30, source="chain", created_at=NOW - 30,
        )  # fmt: skip
        s.add(holder)
        s.flush()
        claim_receipts(s, replay_keys=[parse_artifact(data=receipt).replay_key], review=holder, superseding=None)
    resp = prepare(client, payer, review={"subject": merchant.did, "ratingValue": 5, "proofs": [receipt]})
    body = assert_problem(resp, 409, "receipt-replayed")
    assert "planted" in body["detail"]


def test_prepare_lets_the_payer_update_their_review(client: TestClient, merchant: Merchant) -> None:
    payer = Reviewer()
    receipt = merchant.receipt(payer=payer.address, issued_at=NOW - 60)
    assert payer.submit(client, subject=merchant.did, ratingValue=2, proofs=[receipt]).status_code == 201
    again = prepare(client, payer, review={"subject": merchant.did, "ratingValue": 4, "proofs": [receipt]})
    assert again.status_code == 200, again.text


def test_unknown_proof_type_needs_opt_in(client: TestClient, merchant: Merchant, reviewer: Reviewer) -> None:
    proofs = [{"proofType": "tx-encoded-value", "proofPurpose": "commercial-tx", "proofObject": {"txHash": "x"}}]
    review = {"subject": merchant.did, "ratingValue": 4, "proofs": proofs}
    body = assert_problem(prepare(client, reviewer, review=review), 422, "unsupported-proof-type")
    assert "allowUnsupported" in body["detail"]
    ok = prepare(client, reviewer, review=review, allowUnsupported=True)
    assert ok.status_code == 200, ok.text
    assert ok.json()["evidence"] == "none"


# -- error semantics ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/reviews/prepare", "/v1/reviews"])
def test_malformed_json_is_400(client: TestClient, path: str) -> None:
    resp = client.post(path, content=b'{"attester": "0x', headers={"content-type": "application/json"})
    assert_problem(resp, 400, "malformed-body")


@pytest.mark.parametrize("rating", [0, 6, 9, -1])
def test_rating_out_of_range_is_invalid_rating(client: TestClient, reviewer: Reviewer, rating: int) -> None:
    resp = prepare(client, reviewer, review={"subject": "did:web:a.example", "ratingValue": rating})
    assert_problem(resp, 422, "invalid-rating")


def test_did_web_host_refused_by_configuration_is_422_with_a_hint(
    wired: Wired, didweb: DidWebHost, reviewer: Reviewer
) -> None:
    merchant = Merchant(host=didweb.host)
    didweb.set_document(merchant.did_document())
    # The same loopback host, but not listed in OMATRUST_DID_WEB_INSECURE_HOSTS: the SSRF policy refuses it.
    strict = DidResolver(fetcher=SafeFetcher(timeout=3.0, ca_file=didweb.ca_pem_path), ttl=0)
    rt = dataclasses.replace(wired.runtime, resolver=strict)
    app = create_app(Settings(rate_limit_per_minute=1000), wired=Wired(runtime=rt, publisher=None))
    with TestClient(app) as c:
        receipt = merchant.receipt(payer=reviewer.address, issued_at=NOW - 60)
        resp = prepare(c, reviewer, review={"subject": merchant.did, "ratingValue": 5, "proofs": [receipt]})
    body = assert_problem(resp, 422, "fetch-address-refused")
    assert "retry-after" not in resp.headers
    assert "OMATRUST_DID_WEB_INSECURE_HOSTS" in body["hint"]


def test_every_error_code_in_the_readme_is_emitted_by_a_test() -> None:
    """The README's error list is a promise: each code it names is asserted somewhere in the tests."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("**Errors**") :]
    section = section[: section.index("\n\n")]
    codes = set(re.findall(r"`([a-z][a-z0-9]*(?:-[a-z0-9]+)+)`", section))
    codes -= {"problem+json"}
    assert len(codes) >= 10, codes
    tests = "\n".join(p.read_text(encoding="utf-8") for p in Path(__file__).resolve().parents[1].rglob("test_*.py")
                      if p.resolve() != Path(__file__).resolve() and "node_modules" not in p.parts)  # fmt: skip
    families = {c for c in codes if c.endswith("-*")}
    missing = [c for c in sorted(codes - families) if f'"{c}"' not in tests and f"'{c}'" not in tests]
    assert not missing, f"README codes no test asserts: {missing}"
