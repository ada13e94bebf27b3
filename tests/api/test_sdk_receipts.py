"""Receipts created by the published x402 TypeScript SDK, posted through the API as review proofs."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from service.cli.demo_kit import Merchant, Reviewer
from service.domain import ArtifactKind
from service.proofs import proof_wrapper
from tests.interop.peer import node_ready, run_peer

pytestmark = pytest.mark.node


@pytest.fixture(autouse=True)
def _need_node() -> None:
    why = node_ready()
    if why:
        pytest.skip(why)


@pytest.mark.parametrize("fmt", ["eip712", "jws"])
def test_sdk_receipt_is_a_verified_purchase(
    client: TestClient, merchant: Merchant, reviewer: Reviewer, fmt: str
) -> None:
    now = int(time.time()) - 30
    spec: dict[str, object] = {
        "kind": "receipt", "format": fmt, "now": now, "resourceUrl": merchant.url("/forecast?city=Lisbon"),
        "network": "eip155:8453", "payer": reviewer.address, "transaction": "0x" + "ab" * 32,
    }  # fmt: skip
    if fmt == "eip712":
        spec["privateKey"] = "0x" + merchant.evm_key.hex()
    else:
        spec.update(jwk=merchant.jws_key, kid=merchant.kid, alg="ES256")
    artifact = run_peer("create", {"specs": [spec]})["artifacts"][0]["artifact"]
    proof = proof_wrapper(artifact=artifact, kind=ArtifactKind.RECEIPT, issued_at=now)

    resp = reviewer.submit(client, subject=merchant.did, ratingValue=5, reviewBody="via the SDK", proofs=[proof])
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["verifiedPurchase"] is True
    assert body["proofs"][0]["format"] == fmt
    expected_signer = merchant.address if fmt == "eip712" else merchant.kid
    assert body["proofs"][0]["signer"].lower() == expected_signer.lower()
