"""EIP-712 digests and signer recovery cross-checked against eth-account (the reference implementation) on many
random payloads, including unicode and mixed-case strings, in both directions (they sign / we recover and
we sign / they recover)."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain import ArtifactKind, OfferPayload, ReceiptPayload
from service.proofs import (
    offer_digest,
    parse_artifact,
    receipt_digest,
    recover_eip712_signer,
    sign_offer_eip712,
    sign_receipt_eip712,
)
from tests.proofs.make_assets import typed_data

MAX_SAFE = 2**53 - 1
strings = st.text(max_size=80)  # full unicode (no surrogates), incl. control chars and astral planes
mixed_case_hex = st.from_regex(r"\A0x[0-9a-fA-F]{40}\Z")
field = st.one_of(strings, mixed_case_hex)
uint = st.integers(min_value=0, max_value=MAX_SAFE)
keys = st.binary(min_size=32, max_size=32).filter(lambda b: 0 < int.from_bytes(b, "big") < 2**256 - 2**129)

offers = st.builds(
    OfferPayload,
    version=st.just(1),
    resource_url=field,
    scheme=field,
    network=field,
    asset=field,
    pay_to=field,
    amount=field,
    valid_until=uint,
)
receipts = st.builds(
    ReceiptPayload,
    version=st.just(1),
    network=field,
    resource_url=field,
    payer=field,
    issued_at=uint,
    transaction=field,
)


def reference_digest(kind: str, wire: dict[str, Any]) -> bytes:
    msg = encode_typed_data(full_message=typed_data(kind, wire))
    return keccak(b"\x19" + msg.version + msg.header + msg.body)


def offer_wire(p: OfferPayload) -> dict[str, Any]:
    return {
        "version": p.version,
        "resourceUrl": p.resource_url,
        "scheme": p.scheme,
        "network": p.network,
        "asset": p.asset,
        "payTo": p.pay_to,
        "amount": p.amount,
        "validUntil": p.valid_until,
    }


def receipt_wire(p: ReceiptPayload) -> dict[str, Any]:
    return {
        "version": p.version,
        "network": p.network,
        "resourceUrl": p.resource_url,
        "payer": p.payer,
        "issuedAt": p.issued_at,
        "transaction": p.transaction,
    }


@settings(max_examples=80, deadline=None)
@given(offers)
def test_offer_digest_matches_eth_account(payload: OfferPayload) -> None:
    assert offer_digest(payload) == reference_digest("offer", offer_wire(payload))


@settings(max_examples=80, deadline=None)
@given(receipts)
def test_receipt_digest_matches_eth_account(payload: ReceiptPayload) -> None:
    assert receipt_digest(payload) == reference_digest("receipt", receipt_wire(payload))


@settings(max_examples=60, deadline=None)
@given(receipts, keys)
def test_eth_account_signs_we_recover(payload: ReceiptPayload, key: bytes) -> None:
    wire = receipt_wire(payload)
    signed = Account.sign_message(encode_typed_data(full_message=typed_data("receipt", wire)), key)
    envelope = {"format": "eip712", "payload": wire, "signature": "0x" + signed.signature.hex().removeprefix("0x")}
    artifact = parse_artifact(data=envelope, expect=ArtifactKind.RECEIPT)
    assert recover_eip712_signer(artifact=artifact) == Account.from_key(key).address
    assert artifact.replay_key == reference_digest("receipt", wire).hex()


@settings(max_examples=60, deadline=None)
@given(offers, keys)
def test_we_sign_eth_account_recovers(payload: OfferPayload, key: bytes) -> None:
    envelope = sign_offer_eip712(payload=payload, private_key=key)
    msg = encode_typed_data(full_message=typed_data("offer", envelope["payload"]))
    assert Account.recover_message(msg, signature=envelope["signature"]) == Account.from_key(key).address
    # and the envelope round-trips through our parser unchanged
    artifact = parse_artifact(data=envelope, expect=ArtifactKind.OFFER)
    assert artifact.payload == payload


@settings(max_examples=30, deadline=None)
@given(receipts, keys)
def test_we_sign_receipt_eth_account_recovers(payload: ReceiptPayload, key: bytes) -> None:
    envelope = sign_receipt_eip712(payload=payload, private_key=key)
    msg = encode_typed_data(full_message=typed_data("receipt", envelope["payload"]))
    assert Account.recover_message(msg, signature=envelope["signature"]) == Account.from_key(key).address


def test_tampered_payload_recovers_a_different_address() -> None:
    key = b"\x07" * 32
    payload = ReceiptPayload(1, "eip155:8453", "https://api.example.com/x", "0xAbC", 1_700_000_000, "")
    envelope = sign_receipt_eip712(payload=payload, private_key=key)
    envelope["payload"]["payer"] = "0xabc"  # only the case changed: strings are hashed as transmitted
    recovered = recover_eip712_signer(artifact=parse_artifact(data=envelope))
    assert recovered != Account.from_key(key).address
