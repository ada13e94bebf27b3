"""parse_artifact behaviour beyond the named assets: input forms, what is kept, what is ignored."""

from __future__ import annotations

import hashlib
import json

import pytest
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak

from service.domain import ArtifactFormat, ArtifactKind, OfferPayload, Reason, ReceiptPayload
from service.errors import MalformedInput, SignatureInvalid
from service.proofs import (
    generate_private_jwk,
    parse_artifact,
    proof_wrapper,
    sign_offer_eip712,
    sign_receipt_eip712,
    sign_receipt_jws,
)
from tests.proofs.make_assets import b64, typed_data

KEY = b"\x05" * 32
RECEIPT = ReceiptPayload(1, "eip155:8453", "https://api.example.com/x", "0xAbC", 1_700_000_000, "0xfeed")
OFFER = OfferPayload(1, "https://api.example.com/x", "exact", "eip155:8453", "0xA", "0xB", "7", 0)


def test_same_artifact_from_object_text_bytes_and_wrappers() -> None:
    envelope = sign_receipt_eip712(payload=RECEIPT, private_key=KEY)
    text = json.dumps(envelope)
    forms = [
        envelope,
        text,
        text.encode(),
        proof_wrapper(artifact=envelope, kind=ArtifactKind.RECEIPT),
        {"proofType": "x402-receipt", "proofPurpose": "commercial-tx", "proofObject": text},
        json.dumps(proof_wrapper(artifact=envelope, kind=ArtifactKind.RECEIPT, issued_at=5)).encode(),
    ]
    parsed = [parse_artifact(data=form) for form in forms]
    assert all(p == parsed[0] for p in parsed)
    assert parsed[0].raw == envelope


def test_eip712_signing_input_is_the_reference_digest() -> None:
    envelope = sign_offer_eip712(payload=OFFER, private_key=KEY, accept_index=3)
    artifact = parse_artifact(data=envelope)
    msg = encode_typed_data(full_message=typed_data("offer", envelope["payload"]))
    digest = keccak(b"\x19" + msg.version + msg.header + msg.body)
    assert artifact.signing_input == digest
    assert artifact.replay_key == digest.hex()
    assert artifact.kind is ArtifactKind.OFFER
    assert artifact.format is ArtifactFormat.EIP712


def test_accept_index_is_ignored() -> None:
    envelope = sign_offer_eip712(payload=OFFER, private_key=KEY, accept_index=0)
    for hint in (7, "x", None, -1):
        assert (
            parse_artifact(data={**envelope, "acceptIndex": hint}).replay_key
            == parse_artifact(data=envelope).replay_key
        )


def test_extra_payload_members_do_not_change_the_digest() -> None:
    envelope = sign_receipt_eip712(payload=RECEIPT, private_key=KEY)
    extra = {**envelope, "payload": {**envelope["payload"], "note": "unsigned"}}
    assert parse_artifact(data=extra).signing_input == parse_artifact(data=envelope).signing_input


def test_jws_fields_and_replay_key() -> None:
    envelope = sign_receipt_jws(payload=RECEIPT, private_jwk=generate_private_jwk(crv="Ed25519"), kid="did:key:z6Mk#a")
    artifact = parse_artifact(data=envelope)
    header_b64, payload_b64, _ = envelope["signature"].split(".")
    assert artifact.signing_input == f"{header_b64}.{payload_b64}".encode()
    assert artifact.replay_key == hashlib.sha256(artifact.signing_input).hexdigest()
    assert (artifact.kid, artifact.alg, artifact.header_jwk) == ("did:key:z6Mk#a", "EdDSA", None)
    assert artifact.signature == envelope["signature"]


def test_jws_receipt_without_transaction_reads_as_empty() -> None:
    no_tx = ReceiptPayload(1, "eip155:8453", "https://api.example.com/x", "0xAbC", 1_700_000_000, "")
    envelope = sign_receipt_jws(payload=no_tx, private_jwk=generate_private_jwk(crv="P-256"), kid="did:web:a#k")
    assert parse_artifact(data=envelope).payload == no_tx


def test_jws_payload_member_next_to_jws_is_ignored() -> None:
    envelope = sign_receipt_jws(payload=RECEIPT, private_jwk=generate_private_jwk(crv="P-256"), kid="did:web:a#k")
    decoy = {**envelope, "payload": {"version": 1, "payer": "0xEvil"}}
    assert parse_artifact(data=decoy).payload == RECEIPT


def test_detected_kind_without_declaration() -> None:
    assert parse_artifact(data=sign_receipt_eip712(payload=RECEIPT, private_key=KEY)).kind is ArtifactKind.RECEIPT
    assert parse_artifact(data=sign_offer_eip712(payload=OFFER, private_key=KEY)).kind is ArtifactKind.OFFER


def test_declared_kind_with_neither_kind_fields_reports_the_missing_field() -> None:
    envelope = {"format": "eip712", "payload": {"version": 1, "network": "n", "resourceUrl": "u"}, "signature": "0x"}
    with pytest.raises(MalformedInput) as info:
        parse_artifact(data=envelope, expect=ArtifactKind.RECEIPT)
    assert info.value.reason is Reason.MISSING_FIELD


def test_parse_checks_payload_before_signature_form() -> None:
    envelope = {"format": "eip712", "payload": {"version": 2, "payer": "x"}, "signature": "nope"}
    with pytest.raises(Exception) as info:  # noqa: PT011 - the reason is what matters
        parse_artifact(data=envelope)
    assert getattr(info.value, "reason", None) is Reason.UNSUPPORTED_VERSION


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000],
    ids=["arrays", "objects"],
)
def test_deeply_nested_json_is_malformed_not_a_crash(text: str) -> None:
    # eth-account (imported by this module) pulls in py_ecc, which raises the recursion limit to 100000; without
    # the depth cap the C JSON scanner then overflows the stack and kills the process.
    import sys

    assert sys.getrecursionlimit() >= 100_000
    with pytest.raises(MalformedInput) as info:
        parse_artifact(data=text)
    assert info.value.reason is Reason.MALFORMED_JSON


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    envelope = sign_receipt_eip712(
        payload=ReceiptPayload(1, "n", "https://a.example/" + "[{" * 100, "p", 1, ""), private_key=KEY
    )
    assert parse_artifact(data=json.dumps(envelope)).payload.resource_url.endswith("[{" * 100)


def test_non_utf8_bytes_are_malformed_json() -> None:
    with pytest.raises(MalformedInput) as info:
        parse_artifact(data=b'{"format":"\xff"}')
    assert info.value.reason is Reason.MALFORMED_JSON


def test_nan_is_not_json() -> None:
    with pytest.raises(MalformedInput) as info:
        parse_artifact(data='{"format":"eip712","payload":{"version":NaN},"signature":"0x"}')
    assert info.value.reason is Reason.MALFORMED_JSON


def test_signature_not_a_string() -> None:
    with pytest.raises(MalformedInput) as info:
        parse_artifact(data={"format": "eip712", "payload": {}, "signature": 5})
    assert info.value.reason is Reason.BAD_FIELD_TYPE


def test_kid_must_be_a_string() -> None:
    compact = f"{b64(json.dumps({'alg': 'EdDSA', 'kid': 5}).encode())}.{b64(b'{}')}.AAAA"
    with pytest.raises(MalformedInput) as info:
        parse_artifact(data={"format": "jws", "signature": compact})
    assert info.value.reason is Reason.BAD_FIELD_TYPE


def test_signature_form_errors_are_signature_invalid() -> None:
    envelope = sign_receipt_eip712(payload=RECEIPT, private_key=KEY)
    with pytest.raises(SignatureInvalid):
        parse_artifact(data={**envelope, "signature": envelope["signature"][:-2] + "1d"})
