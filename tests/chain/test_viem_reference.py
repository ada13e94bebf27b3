"""Cross-check with viem (TypeScript): our User Review encoding and EAS Attest digest equal viem's, and a signature
made by viem is accepted by EAS on the embedded chain through our relayer."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_account import Account

from service.chain.codec import encode_review, review_recipient
from service.chain.delegation import DelegatedRequest
from service.chain.eas_relayer import EasClient
from service.domain import USER_REVIEW_SCHEMA

from .helpers import make_review

pytestmark = pytest.mark.node
HERE = Path(__file__).resolve().parent
VIEM = HERE.parent / "interop" / "node_modules" / "viem"


def _viem(payload: dict) -> dict:
    if shutil.which("node") is None or not VIEM.exists():
        pytest.skip("node or viem (tests/interop node_modules) not available")
    out = subprocess.run(["node", str(HERE / "viem_reference.mjs")], input=json.dumps(payload), text=True,
                         capture_output=True, check=True, timeout=60)
    return json.loads(out.stdout)


def test_encoding_digest_and_signature_agree_with_viem(client: EasClient) -> None:
    reviewer = Account.create()
    review = make_review(3, body="Ünïcödé ✓ — and a long body " * 5)
    review = type(review)(review.subject, review.version, review.rating_value, review.review_body,
                          ("https://example.com/a.png",), review.proofs)
    data = encode_review(review=review)
    recipient = review_recipient(subject=review.subject)
    typed = client.build_attest_typed_data(attester=reviewer.address, data=data, recipient=recipient,
                                           deadline=4_000_000_000)
    result = _viem({
        "schema": USER_REVIEW_SCHEMA,
        "values": [review.subject, review.version, review.rating_value, review.review_body,
                   list(review.screenshot_urls), list(review.proofs)],
        "typedData": typed,
        "privateKey": "0x" + bytes(reviewer.key).hex(),
    })
    assert result["encoded"] == "0x" + data.hex()
    request = DelegatedRequest(attester=reviewer.address, data=data, recipient=recipient, deadline=4_000_000_000,
                               nonce=typed["message"]["nonce"], signature=result["signature"])
    assert "0x" + request.digest(domain=client.domain).hex() == result["digest"]
    [landed] = client.submit(requests=[request])
    assert client.get_attestation(uid=landed.uid).attester == reviewer.address
