"""``POST /v1/witness`` against the loopback DNS server and HTTPS did:web host: the service observes the controller,
attests a Controller Witness on anvil, and our own sync then uses it to authorize a receipt of a merchant that has
since taken its did.json down."""

from __future__ import annotations

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from tests.authorization.conftest import Env

pytestmark = pytest.mark.anvil


def _pkh(address: str) -> str:
    return f"did:pkh:eip155:1:{address}"


def test_witness_then_did_json_taken_down(env: Env, api: TestClient) -> None:
    m = env.merchant()
    env.host.set_document(m.did_document())  # the merchant's did.json lists its receipt key ...
    answer = api.post("/v1/witness", json={"subject": env.subject, "controller": _pkh(m.address)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["method"], body["created"], body["attester"]) == ("did-json", True, env.witness.lower())
    again = api.post("/v1/witness", json={"subject": env.subject, "controller": _pkh(m.address)}).json()
    assert (again["uid"], again["created"]) == (body["uid"], False)  # idempotent within the window

    env.host.clear()  # ... and then goes away
    payer = Account.create().address
    review = env.review(payer, proofs=[m.receipt(payer=payer, issued_at=body["observedAt"] + 1)])
    env.sync()
    row, proof = env.proof(review.uid)
    assert (proof.status, proof.tier, row.verified_purchase) == ("verified", "controller-witness", True)
    assert proof.evidence_hash == body["uid"][2:]


def test_witness_from_dns(env: Env, api: TestClient) -> None:
    m = env.merchant()
    env.dns.set_txt("_controllers.localhost", f"v=1;controller={_pkh(m.address)}")
    answer = api.post("/v1/witness", json={"subject": env.subject, "controller": _pkh(m.address)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["method"] == "dns-txt"
    env.sync()
    assert env.stored(answer.json()["uid"]).fields["controller"] == _pkh(m.address)


@pytest.mark.parametrize(
    ("subject", "controller", "code"),
    [
        (None, "did:pkh:eip155:1:0x" + "1" * 40, "controller-not-asserted"),
        ("did:pkh:eip155:1:0x" + "1" * 40, "did:pkh:eip155:1:0x" + "1" * 40, "invalid-subject"),
        (None, "not-a-did", "bad-did"),
    ],
)
def test_witness_refusals(env: Env, api: TestClient, subject: str | None, controller: str, code: str) -> None:
    answer = api.post("/v1/witness", json={"subject": subject or env.subject, "controller": controller})
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == code
