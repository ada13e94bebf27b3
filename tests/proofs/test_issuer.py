"""Issuer side: envelope shapes as the TS SDK 2.27 emits them, canonical JSON bytes, proof wrapper, key helpers."""

from __future__ import annotations

import base64
import json

import pytest
from eth_account import Account

from service.domain import ArtifactKind, OfferPayload, ReceiptPayload
from service.proofs import (
    alg_for_jwk,
    canonical_json,
    evm_address,
    generate_evm_private_key,
    generate_private_jwk,
    jwk_to_public_jwk,
    offer_to_wire,
    private_jwk_from_secret,
    proof_wrapper,
    receipt_to_wire,
    same_public_key,
    sign_offer_eip712,
    sign_offer_jws,
    sign_receipt_eip712,
    sign_receipt_jws,
)

RECEIPT = ReceiptPayload(1, "eip155:8453", "https://api.example.com/x", "0xAbC", 1_700_000_000, "")
OFFER = OfferPayload(1, "https://api.example.com/x", "exact", "eip155:8453", "0xA", "0xB", "7", 1_700_000_300)


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_eip712_envelopes_have_the_sdk_shape() -> None:
    key = generate_evm_private_key()
    offer = sign_offer_eip712(payload=OFFER, private_key=key, accept_index=1)
    assert list(offer) == ["format", "acceptIndex", "payload", "signature"]
    assert offer["payload"] == offer_to_wire(OFFER)
    receipt = sign_receipt_eip712(payload=RECEIPT, private_key=key)
    assert list(receipt) == ["format", "payload", "signature"]
    assert receipt["payload"]["transaction"] == ""  # EIP-712 always carries it
    sig = receipt["signature"]
    assert sig.startswith("0x")
    assert len(sig) == 132
    assert sig[-2:] in ("1b", "1c")


def test_jws_envelopes_have_the_sdk_shape() -> None:
    jwk = generate_private_jwk(crv="P-256")
    receipt = sign_receipt_jws(payload=RECEIPT, private_jwk=jwk, kid="did:web:api.example.com#key-1")
    assert list(receipt) == ["format", "signature"]
    header_b64, payload_b64, _ = receipt["signature"].split(".")
    # JSON.stringify({alg, kid}): exactly these bytes
    assert unb64(header_b64) == b'{"alg":"ES256","kid":"did:web:api.example.com#key-1"}'
    assert unb64(payload_b64) == (
        b'{"issuedAt":1700000000,"network":"eip155:8453","payer":"0xAbC","resourceUrl":"https://api.example.com/x",'
        b'"version":1}'
    )  # sorted keys, no whitespace, transaction omitted when empty
    offer = sign_offer_jws(payload=OFFER, private_jwk=jwk, kid="k", accept_index=0)
    assert list(offer) == ["format", "acceptIndex", "signature"]
    assert "payload" not in offer


def test_receipt_with_transaction_keeps_it_in_jws() -> None:
    with_tx = ReceiptPayload(1, "n", "https://a.example/", "p", 1, "0xdead")
    compact = sign_receipt_jws(payload=with_tx, private_jwk=generate_private_jwk(crv="Ed25519"), kid="k")["signature"]
    assert json.loads(unb64(compact.split(".")[1]))["transaction"] == "0xdead"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": "x"}, b'{"a":"x","b":1}'),
        ({"s": 'q"\\/'}, b'{"s":"q\\"\\\\/"}'),
        ({"s": "\n\t\x00\x1f\x7f"}, b'{"s":"\\u000a\\u0009\\u0000\\u001f\x7f"}'),  # SDK: \\u00xx, never \\n
        ({"s": "ü😀"}, '{"s":"ü😀"}'.encode()),  # UTF-8, not escaped
        (
            {"n": None, "t": True, "f": False, "l": [2, {"y": 1, "x": 0}]},
            b'{"f":false,"l":[2,{"x":0,"y":1}],"n":null,"t":true}',
        ),
        ({"\U0001f600": 1, "\uffff": 2}, '{"\U0001f600":1,"\uffff":2}'.encode()),  # UTF-16 code-unit order
    ],
)
def test_canonical_json_matches_the_sdk_algorithm(value: dict[str, object], expected: bytes) -> None:
    assert canonical_json(value) == expected


def test_canonical_json_refuses_floats_and_lone_surrogates() -> None:
    with pytest.raises(TypeError):
        canonical_json({"x": 1.5})
    with pytest.raises(UnicodeEncodeError):
        canonical_json({"x": "\ud800"})


def test_wire_forms() -> None:
    assert offer_to_wire(OFFER) == {
        "version": 1,
        "resourceUrl": "https://api.example.com/x",
        "scheme": "exact",
        "network": "eip155:8453",
        "asset": "0xA",
        "payTo": "0xB",
        "amount": "7",
        "validUntil": 1_700_000_300,
    }
    assert "transaction" in receipt_to_wire(RECEIPT)
    assert "transaction" not in receipt_to_wire(RECEIPT, omit_empty_transaction=True)


def test_proof_wrapper() -> None:
    envelope = sign_receipt_eip712(payload=RECEIPT, private_key=generate_evm_private_key())
    assert proof_wrapper(artifact=envelope, kind=ArtifactKind.RECEIPT) == {
        "proofType": "x402-receipt",
        "proofPurpose": "commercial-tx",
        "proofObject": envelope,
        "version": 1,
    }
    wrapped = proof_wrapper(artifact=envelope, kind=ArtifactKind.OFFER, issued_at=42)
    assert wrapped["proofType"] == "x402-offer"
    assert wrapped["issuedAt"] == 42


def test_evm_address_matches_eth_account() -> None:
    key = generate_evm_private_key()
    assert evm_address(private_key=key) == Account.from_key(key).address


@pytest.mark.parametrize(("crv", "alg"), [("P-256", "ES256"), ("secp256k1", "ES256K"), ("Ed25519", "EdDSA")])
def test_key_helpers(crv: str, alg: str) -> None:
    private = generate_private_jwk(crv=crv)
    public = jwk_to_public_jwk(private)
    assert "d" not in public
    assert alg_for_jwk(public) == alg
    again = private_jwk_from_secret(crv=crv, secret=unb64(private["d"]))
    assert again == private
    assert same_public_key(public, again)
    assert not same_public_key(public, jwk_to_public_jwk(generate_private_jwk(crv=crv)))
