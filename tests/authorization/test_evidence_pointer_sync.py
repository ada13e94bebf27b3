"""``evidence-pointer`` proofs through the real paths: a User Review on anvil carrying one is indexed by our own
``sync`` with the pointer fetched from the loopback HTTPS host (stored class ``evidence-pointer``, weighed and
explained by the reputation API), one naming someone else is stored ``unauthorized`` and weighs as ``none``; submit
and prepare refuse an invalid pointer with its reason as problem+json (422) and answer 503 when the document cannot
be fetched."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from service.domain import Reason, Review
from service.errors import CheckFailed, CouldNotCheck
from service.workflows.submit import check_proofs
from tests.authorization.conftest import Env

pytestmark = pytest.mark.anvil
PATH = "/.well-known/omatrust-proof.txt"


def pointer(env: Env, path: str = PATH) -> dict[str, Any]:
    return {"proofType": "evidence-pointer", "proofPurpose": "shared-control",
            "proofObject": {"url": env.host.base_url + path}}  # fmt: skip


def test_sync_stores_the_weak_class_and_the_api_weighs_it(env: Env, api: TestClient) -> None:
    reviewer, stranger = Account.create().address, Account.create().address
    env.host.set(PATH, f"v=1;controller=did:pkh:eip155:1:{reviewer}")
    linked = env.review(reviewer, proofs=[pointer(env)])
    other = env.review(stranger, proofs=[pointer(env)])  # the same document does not name this reviewer
    env.sync()

    row, proof = env.proof(linked.uid)
    assert (row.evidence, row.verified_purchase) == ("evidence-pointer", False)
    assert (proof.status, proof.reason) == ("verified", None)
    row2, proof2 = env.proof(other.uid)
    assert (row2.evidence, proof2.status, proof2.reason) == ("none", "unauthorized",
                                                             Reason.EVIDENCE_CONTROLLER_MISMATCH.value)  # fmt: skip

    rep = api.get(f"/v1/services/{quote(env.subject, safe='')}/reputation", params={"explain": "true"}).json()
    parts = {c["reviewId"]: c for c in rep["contributions"]}
    assert parts[row.id]["evidence"] == "evidence-pointer"
    assert parts[row.id]["evidenceWeight"] == parts[row2.id]["evidenceWeight"] == 0.25  # = none: no score moved
    page = api.get(f"/reviews/{row.id}").text
    assert "Linked to the service" in page


def _review(env: Env, proofs: list[dict[str, Any]]) -> Review:
    return Review(subject=env.subject, version="", rating_value=4, review_body="", screenshot_urls=(),
                  proofs=tuple(json.dumps(p) for p in proofs))  # fmt: skip


def test_submit_refuses_an_invalid_pointer_and_retries_a_failed_fetch(env: Env) -> None:
    reviewer = Account.create().address.lower()
    env.host.set("/moved", b"", status=302, headers={"Location": env.host.base_url + PATH})
    with pytest.raises(CheckFailed) as refused:
        check_proofs(rt=env.rt, attester=reviewer, review=_review(env, [pointer(env, "/moved")]), now=env.now())
    assert refused.value.reason is Reason.FETCH_REDIRECT_REFUSED
    env.host.set(PATH, "down", status=500)
    with pytest.raises(CouldNotCheck) as later:
        check_proofs(rt=env.rt, attester=reviewer, review=_review(env, [pointer(env)]), now=env.now())
    assert later.value.reason is Reason.FETCH_HTTP_STATUS
    env.host.set(PATH, f"v=1;controller=did:pkh:eip155:1:{reviewer}")
    verdict = check_proofs(rt=env.rt, attester=reviewer, review=_review(env, [pointer(env)]), now=env.now())
    assert verdict.evidence == "evidence-pointer"


@pytest.mark.parametrize(("route", "status", "code"), [
    ("redirect", 422, Reason.FETCH_REDIRECT_REFUSED),
    ("malformed", 422, Reason.EVIDENCE_RECORD_MALFORMED),
    ("oversize", 422, Reason.FETCH_TOO_LARGE),
    ("down", 503, Reason.FETCH_HTTP_STATUS),
])  # fmt: skip
def test_prepare_answers_problem_json_with_the_reason(env: Env, api: TestClient, route: str, status: int,
                                                      code: Reason) -> None:  # fmt: skip
    reviewer = Account.create().address
    if route == "redirect":
        env.host.set(PATH, b"", status=302, headers={"Location": env.host.base_url + "/elsewhere"})
    elif route == "malformed":
        env.host.set(PATH, f"controller=did:pkh:eip155:1:{reviewer}")  # no v=1
    elif route == "oversize":
        env.host.set_oversize(PATH, 70_000)
    else:
        env.host.set(PATH, "down", status=503)
    body = {"attester": reviewer, "review": {"subject": env.subject, "ratingValue": 4, "proofs": [pointer(env)]}}
    resp = api.post("/v1/reviews/prepare", json=body)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == code.value
    assert "proofs[0]" in resp.json()["detail"]


def test_prepare_accepts_a_verified_pointer_and_an_unauthorized_one(env: Env, api: TestClient) -> None:
    reviewer = Account.create().address
    env.host.set(PATH, f"v=1;controller=did:pkh:eip155:1:{reviewer}")
    for attester, evidence in ((reviewer, "evidence-pointer"), (Account.create().address, "none")):
        body = {"attester": attester, "review": {"subject": env.subject, "ratingValue": 4, "proofs": [pointer(env)]}}
        resp = api.post("/v1/reviews/prepare", json=body)
        assert resp.status_code == 200, resp.text
        assert resp.json()["evidence"] == evidence
