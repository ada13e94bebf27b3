"""JWS verification: round trips on all three curves, PyJWT as the outside reference both ways, the signature
form rules, and the key/alg checks."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from service.domain import ArtifactKind, OfferPayload, Reason, ReceiptPayload, VerificationKey
from service.errors import MalformedInput, SignatureInvalid
from service.proofs import (
    generate_private_jwk,
    jwk_to_public_jwk,
    parse_artifact,
    sign_offer_jws,
    sign_receipt_eip712,
    sign_receipt_jws,
    verify_jws,
)
from service.proofs.keys import load_public_key, public_params

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
KID = "did:web:api.example.com#key-1"
RECEIPT = ReceiptPayload(1, "eip155:8453", "https://api.example.com/data?q=1", "0xAbC", 1_700_000_000, "")
OFFER = OfferPayload(1, "https://api.example.com/data", "exact", "eip155:8453", "0xA", "0xB", "100", 1_700_000_300)
CURVES = ["P-256", "secp256k1", "Ed25519"]
PYJWT_ALG = {"P-256": "ES256", "secp256k1": "ES256K", "Ed25519": "EdDSA"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_of(private_jwk: dict[str, str]) -> VerificationKey:
    return VerificationKey(id=KID, controller="did:web:api.example.com", jwk=jwk_to_public_jwk(private_jwk))


@pytest.fixture(scope="module", params=CURVES)
def private_jwk(request: pytest.FixtureRequest) -> dict[str, str]:
    return generate_private_jwk(crv=request.param)


def test_round_trip_receipt(private_jwk: dict[str, str]) -> None:
    envelope = sign_receipt_jws(payload=RECEIPT, private_jwk=private_jwk, kid=KID)
    assert set(envelope) == {"format", "signature"}
    artifact = parse_artifact(data=envelope, expect=ArtifactKind.RECEIPT)
    verify_jws(artifact=artifact, key=key_of(private_jwk))
    assert artifact.payload == RECEIPT
    assert artifact.kid == KID


def test_round_trip_offer(private_jwk: dict[str, str]) -> None:
    envelope = sign_offer_jws(payload=OFFER, private_jwk=private_jwk, kid=KID, accept_index=2)
    assert envelope["acceptIndex"] == 2
    artifact = parse_artifact(data=envelope, expect=ArtifactKind.OFFER)
    verify_jws(artifact=artifact, key=key_of(private_jwk))
    assert artifact.payload == OFFER


def test_pyjwt_verifies_ours(private_jwk: dict[str, str]) -> None:
    envelope = sign_receipt_jws(payload=RECEIPT, private_jwk=private_jwk, kid=KID)
    public = jwt.PyJWK(jwk_to_public_jwk(private_jwk)).key
    alg = PYJWT_ALG[private_jwk["crv"]]
    decoded = jwt.api_jws.PyJWS().decode_complete(envelope["signature"], public, algorithms=[alg])
    assert decoded["header"] == {"alg": alg, "kid": KID}
    assert json.loads(decoded["payload"])["payer"] == "0xAbC"


def test_we_verify_pyjwt(private_jwk: dict[str, str]) -> None:
    alg = PYJWT_ALG[private_jwk["crv"]]
    payload = json.dumps(
        {"version": 1, "network": "n", "resourceUrl": "https://a.example/", "payer": "p", "issuedAt": 5}
    ).encode()
    token = jwt.api_jws.PyJWS().encode(payload, jwt.PyJWK(private_jwk).key, algorithm=alg, headers={"kid": KID})
    artifact = parse_artifact(data={"format": "jws", "signature": token})
    verify_jws(artifact=artifact, key=key_of(private_jwk))
    assert artifact.payload == ReceiptPayload(1, "n", "https://a.example/", "p", 5, "")


def test_tampered_payload_fails(private_jwk: dict[str, str]) -> None:
    compact = sign_receipt_jws(payload=RECEIPT, private_jwk=private_jwk, kid=KID)["signature"]
    h, p, s = compact.split(".")
    body = json.loads(unb64(p))
    body["issuedAt"] += 1
    artifact = parse_artifact(data={"format": "jws", "signature": f"{h}.{b64(json.dumps(body).encode())}.{s}"})
    with pytest.raises(SignatureInvalid) as info:
        verify_jws(artifact=artifact, key=key_of(private_jwk))
    assert info.value.reason is Reason.SIGNATURE_INVALID


def test_es256k_high_s_is_accepted() -> None:
    private = generate_private_jwk(crv="secp256k1")
    compact = sign_receipt_jws(payload=RECEIPT, private_jwk=private, kid=KID)["signature"]
    h, p, s = compact.split(".")
    raw = unb64(s)
    r, low = raw[:32], int.from_bytes(raw[32:], "big")
    assert low <= SECP256K1_N // 2  # we sign low-S (coincurve)
    high = r + (SECP256K1_N - low).to_bytes(32, "big")
    artifact = parse_artifact(data={"format": "jws", "signature": f"{h}.{p}.{b64(high)}"})
    verify_jws(artifact=artifact, key=key_of(private))
    # both forms cover the same signing input, so they share one replay key
    assert artifact.replay_key == parse_artifact(data={"format": "jws", "signature": compact}).replay_key


def test_es256k_s_out_of_range_fails() -> None:
    private = generate_private_jwk(crv="secp256k1")
    h, p, s = sign_receipt_jws(payload=RECEIPT, private_jwk=private, kid=KID)["signature"].split(".")
    bad = unb64(s)[:32] + SECP256K1_N.to_bytes(32, "big")
    with pytest.raises(SignatureInvalid) as info:
        verify_jws(
            artifact=parse_artifact(data={"format": "jws", "signature": f"{h}.{p}.{b64(bad)}"}), key=key_of(private)
        )
    assert info.value.reason is Reason.SIGNATURE_INVALID


def test_noncanonical_payload_bytes_verify_as_received() -> None:
    private = generate_private_jwk(crv="P-256")
    header = b64(json.dumps({"kid": KID, "alg": "ES256", "typ": "JWT"}).encode())  # unusual order + typ
    payload = b64(
        b'{"payer": "0xAbC",  "version":1, "network":"eip155:8453",\n"resourceUrl":"https://x.example/",'
        b'"issuedAt":1700000000,"extra":{"z":1,"a":2}}'
    )
    # Sign these exact bytes with PyJWT's algorithm object (an encoder would re-serialize them).
    algo = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256)
    signing_input = f"{header}.{payload}".encode()
    sig = algo.sign(signing_input, algo.prepare_key(jwt.PyJWK(private).key))
    artifact = parse_artifact(data={"format": "jws", "signature": f"{header}.{payload}.{b64(sig)}"})
    verify_jws(artifact=artifact, key=key_of(private))
    assert artifact.signing_input == signing_input


def test_header_jwk_must_match_resolved_key() -> None:
    private, other = generate_private_jwk(crv="Ed25519"), generate_private_jwk(crv="Ed25519")
    envelope = sign_receipt_jws(payload=RECEIPT, private_jwk=private, kid=KID)
    p = envelope["signature"].split(".")[1]
    for header_jwk, ok in (
        (jwk_to_public_jwk(private), True),
        (jwk_to_public_jwk(other), False),
        ({"kty": "OKP"}, False),
    ):
        header = b64(json.dumps({"alg": "EdDSA", "kid": KID, "jwk": header_jwk}).encode())
        sk = ed25519.Ed25519PrivateKey.from_private_bytes(unb64(private["d"]))
        compact = f"{header}.{p}.{b64(sk.sign(f'{header}.{p}'.encode()))}"
        artifact = parse_artifact(data={"format": "jws", "signature": compact})
        if ok:
            verify_jws(artifact=artifact, key=key_of(private))
        else:
            with pytest.raises(SignatureInvalid) as info:
                verify_jws(artifact=artifact, key=key_of(private))
            assert info.value.reason is Reason.JWK_MISMATCH


@pytest.mark.parametrize(
    ("signer_crv", "key_crv"),
    [("P-256", "secp256k1"), ("secp256k1", "P-256"), ("Ed25519", "P-256"), ("P-256", "Ed25519")],
)
def test_alg_must_fit_key(signer_crv: str, key_crv: str) -> None:
    envelope = sign_receipt_jws(payload=RECEIPT, private_jwk=generate_private_jwk(crv=signer_crv), kid=KID)
    with pytest.raises(SignatureInvalid) as info:
        verify_jws(artifact=parse_artifact(data=envelope), key=key_of(generate_private_jwk(crv=key_crv)))
    assert info.value.reason is Reason.ALG_KEY_MISMATCH


def test_key_metadata_must_allow_the_alg() -> None:
    private = generate_private_jwk(crv="P-256")
    artifact = parse_artifact(data=sign_receipt_jws(payload=RECEIPT, private_jwk=private, kid=KID))
    for extra in ({"alg": "ES384"}, {"use": "enc"}):
        key = VerificationKey(id=KID, controller="", jwk={**jwk_to_public_jwk(private), **extra})
        with pytest.raises(SignatureInvalid) as info:
            verify_jws(artifact=artifact, key=key)
        assert info.value.reason is Reason.ALG_KEY_MISMATCH
    verify_jws(
        artifact=artifact,
        key=VerificationKey(id=KID, controller="", jwk={**jwk_to_public_jwk(private), "alg": "ES256", "use": "sig"}),
    )


def test_evm_address_key_cannot_verify_jws() -> None:
    artifact = parse_artifact(
        data=sign_receipt_jws(payload=RECEIPT, private_jwk=generate_private_jwk(crv="secp256k1"), kid=KID)
    )
    with pytest.raises(SignatureInvalid) as info:
        verify_jws(artifact=artifact, key=VerificationKey(id=KID, controller="", address="0x" + "ab" * 20))
    assert info.value.reason is Reason.ALG_KEY_MISMATCH


def test_eip712_artifact_is_not_a_jws() -> None:
    artifact = parse_artifact(data=sign_receipt_eip712(payload=RECEIPT, private_key=b"\x01" * 32))
    with pytest.raises(SignatureInvalid) as info:
        verify_jws(artifact=artifact, key=key_of(generate_private_jwk(crv="P-256")))
    assert info.value.reason is Reason.UNSUPPORTED_FORMAT


def test_ed25519_signature_wrong_length() -> None:
    private = generate_private_jwk(crv="Ed25519")
    h, p, s = sign_receipt_jws(payload=RECEIPT, private_jwk=private, kid=KID)["signature"].split(".")
    artifact = parse_artifact(data={"format": "jws", "signature": f"{h}.{p}.{b64(unb64(s)[:63])}"})
    with pytest.raises(SignatureInvalid) as info:
        verify_jws(artifact=artifact, key=key_of(private))
    assert info.value.reason is Reason.SIGNATURE_ENCODING


def test_point_not_on_curve_is_malformed_key() -> None:
    private = generate_private_jwk(crv="P-256")
    artifact = parse_artifact(data=sign_receipt_jws(payload=RECEIPT, private_jwk=private, kid=KID))
    bad = {**jwk_to_public_jwk(private), "y": b64(b"\x01" * 32)}
    with pytest.raises(MalformedInput) as info:
        verify_jws(artifact=artifact, key=VerificationKey(id=KID, controller="", jwk=bad))
    assert info.value.reason is Reason.BAD_FIELD_VALUE


def test_loaded_keys_are_cached() -> None:
    private = generate_private_jwk(crv="P-256")
    key = key_of(private)
    artifact = parse_artifact(data=sign_receipt_jws(payload=RECEIPT, private_jwk=private, kid=KID))
    verify_jws(artifact=artifact, key=key)
    before = load_public_key.cache_info().hits
    for _ in range(5):
        verify_jws(artifact=artifact, key=key)
    assert load_public_key.cache_info().hits >= before + 5
    assert isinstance(load_public_key(public_params(key.jwk or {})), ec.EllipticCurvePublicKey)
