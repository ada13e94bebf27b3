"""Review responses: a User Review Response (refUID → the review) from an address authorized for the subject is
stored ``authorized`` and shown under the review (API field and page); one from anyone else is stored
``unauthorized`` and not shown."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from tests.authorization.conftest import Env

pytestmark = pytest.mark.anvil


def test_authorized_response_shows_under_its_review(env: Env, api: TestClient) -> None:
    t0 = env.now()
    m = env.merchant()
    owner = Account.create().address  # an address an approved witness saw controlling the subject
    env.witness_attest(env.witness, subject=env.subject, controller=f"did:pkh:eip155:1:{owner}", observed_at=t0 - 50)
    env.witness_attest(env.witness, subject=env.subject, controller=f"did:pkh:eip155:1:{m.address}",
                       observed_at=t0 - 50)  # fmt: skip
    payer = Account.create().address
    review = env.review(payer, proofs=[m.receipt(payer=payer, issued_at=t0 - 10)])
    answer = env.response(owner, review_uid=review.uid, body="Thanks, fixed the latency issue.")
    stranger = env.response(Account.create().address, review_uid=review.uid, body="I am the merchant, honest")

    env.sync()
    assert env.stored(answer.uid).status == "authorized"
    assert env.stored(stranger.uid).status == "unauthorized"
    row, _ = env.proof(review.uid)

    shown = api.get(f"/v1/reviews/{row.id}").json()["responses"]
    assert [(r["uid"], r["attester"], r["responseBody"]) for r in shown] == [
        (answer.uid, owner.lower(), "Thanks, fixed the latency issue.")]  # fmt: skip
    listed = api.get(f"/v1/services/{quote(env.subject, safe='')}/reviews").json()["items"]
    assert [r["responses"][0]["uid"] for r in listed if r["id"] == row.id] == [answer.uid]
    page = api.get(f"/reviews/{row.id}").text
    assert "Thanks, fixed the latency issue." in page
    assert "I am the merchant, honest" not in page
