"""Generate the named test inputs in tests/proofs/assets/ (sigstore-style: one small JSON file per case).

Deliberately independent of ``service.proofs``: EIP-712 artifacts are signed with eth-account (the reference
implementation), JWS artifacts are assembled by hand with ``cryptography`` (deterministic ECDSA, RFC 6979), so the
"good" assets are an outside opinion of what valid looks like. Expected errors/reasons are written by hand below.

Every file: ``{"description", "input" | "input_text", "expect", "stage", "error", "reason", ["key"], ["signer"]}``
— ``stage`` "parse" (the error comes from parse_artifact) or "verify" (from recover_eip712_signer / verify_jws,
with ``key`` the resolved public JWK for JWS, ``signer`` the address eth-account says signed an EIP-712 artifact).

Run ``python -m tests.proofs.make_assets`` to rewrite the files; test_assets.py checks they are up to date.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from eth_account import Account
from eth_account.messages import encode_typed_data

ASSETS = Path(__file__).with_name("assets")

EVM_KEY = "0x" + "11" * 32
P256_SECRET = int("22" * 32, 16)
K1_SECRET = int("33" * 32, 16)
ED_SEED = bytes([0x44] * 32)
OTHER_ED_SEED = bytes([0x55] * 32)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

OFFER_FIELDS = [
    ("version", "uint256"),
    ("resourceUrl", "string"),
    ("scheme", "string"),
    ("network", "string"),
    ("asset", "string"),
    ("payTo", "string"),
    ("amount", "string"),
    ("validUntil", "uint256"),
]
RECEIPT_FIELDS = [
    ("version", "uint256"),
    ("network", "string"),
    ("resourceUrl", "string"),
    ("payer", "string"),
    ("issuedAt", "uint256"),
    ("transaction", "string"),
]
DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
]

OFFER = {
    "version": 1,
    "resourceUrl": "https://api.example.com/premium-data",
    "scheme": "exact",
    "network": "eip155:8453",
    "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
    "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
    "amount": "10000",
    "validUntil": 1703123756,
}
RECEIPT = {
    "version": 1,
    "network": "eip155:8453",
    "resourceUrl": "https://api.example.com/premium-data",
    "payer": "0x857b06519E91e3A54538791bDbb0E22373e36b66",
    "issuedAt": 1703123456,
    "transaction": "",
}
KID = "did:web:api.example.com#key-1"


def typed_data(kind: str, message: dict[str, Any]) -> dict[str, Any]:
    """The full eth_signTypedData_v4 message for an x402 offer/receipt (the reference encoding)."""
    fields = OFFER_FIELDS if kind == "offer" else RECEIPT_FIELDS
    primary = "Offer" if kind == "offer" else "Receipt"
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, primary: [{"name": n, "type": t} for n, t in fields]},
        "primaryType": primary,
        "domain": {"name": f"x402 {kind}", "version": "1", "chainId": 1},
        "message": {n: message[n] for n, _ in fields},
    }


def eth_sign(kind: str, payload: dict[str, Any], key: str = EVM_KEY) -> str:
    signed = Account.sign_message(encode_typed_data(full_message=typed_data(kind, payload)), key)
    return "0x" + signed.signature.hex().removeprefix("0x")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def p256_key() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(P256_SECRET, ec.SECP256R1())


def k1_key() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(K1_SECRET, ec.SECP256K1())


def ec_public_jwk(key: ec.EllipticCurvePrivateKey, crv: str) -> dict[str, str]:
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": crv, "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}


def ed_public_jwk(seed: bytes) -> dict[str, str]:
    pub = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return {"kty": "OKP", "crv": "Ed25519", "x": b64(pub)}


def ecdsa_raw(key: ec.EllipticCurvePrivateKey, data: bytes, *, high_s: bool | None = None) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)))
    if high_s is not None and isinstance(key.curve, ec.SECP256K1) and (s > SECP256K1_N // 2) != high_s:
        s = SECP256K1_N - s
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def jws(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes, sign: Any) -> str:
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    p = payload if isinstance(payload, bytes) else compact_json(payload)
    signing_input = f"{b64(h)}.{b64(p)}".encode()
    return f"{signing_input.decode()}.{b64(sign(signing_input))}"


def jws_receipt_payload() -> dict[str, Any]:
    out = {k: v for k, v in RECEIPT.items() if k != "transaction"}
    return out


def build_assets() -> dict[str, dict[str, Any]]:
    """name → asset document."""
    assets: dict[str, dict[str, Any]] = {}
    signer = Account.from_key(EVM_KEY).address
    p256, k1 = p256_key(), k1_key()
    ed = ed25519.Ed25519PrivateKey.from_private_bytes(ED_SEED)
    jwk_p256, jwk_k1, jwk_ed = ec_public_jwk(p256, "P-256"), ec_public_jwk(k1, "secp256k1"), ed_public_jwk(ED_SEED)

    def add(
        name: str,
        description: str,
        *,
        stage: str = "parse",
        error: str | None = None,
        reason: str | None = None,
        expect: str | None = None,
        **extra: Any,
    ) -> None:
        assets[name] = {
            "description": description,
            "stage": stage,
            "error": error,
            "reason": reason,
            "expect": expect,
            **extra,
        }

    offer712 = {"format": "eip712", "acceptIndex": 0, "payload": OFFER, "signature": eth_sign("offer", OFFER)}
    receipt712 = {"format": "eip712", "payload": RECEIPT, "signature": eth_sign("receipt", RECEIPT)}

    def variant(base: dict[str, Any], **payload_changes: Any) -> dict[str, Any]:
        out = copy.deepcopy(base)
        for k, v in payload_changes.items():
            if v is _DELETE:
                del out["payload"][k]
            else:
                out["payload"][k] = v
        return out

    # ---- good inputs (signer/key from an independent implementation)
    add("good-eip712-offer", "EIP-712 offer signed by eth-account", stage="verify", input=offer712, signer=signer)
    add("good-eip712-receipt", "EIP-712 receipt signed by eth-account", stage="verify", input=receipt712, signer=signer)
    sig = receipt712["signature"]
    add(
        "good-eip712-uppercase-hex",
        "upper-case hex signature digits are accepted",
        stage="verify",
        input={**receipt712, "signature": "0x" + sig[2:].upper()},
        signer=signer,
    )
    v = int(sig[-2:], 16)
    add(
        "good-eip712-v-0-1",
        "v as yParity (0/1) instead of 27/28",
        stage="verify",
        input={**receipt712, "signature": sig[:-2] + f"{v - 27:02x}"},
        signer=signer,
    )
    r_hex, s_int = sig[2:66], int(sig[66:130], 16)
    high = sig[:2] + r_hex + f"{SECP256K1_N - s_int:064x}" + f"{55 - v:02x}"
    add(
        "good-eip712-high-s",
        "high-S with flipped v recovers the same signer (the SDK accepts high-S)",
        stage="verify",
        input={**receipt712, "signature": high},
        signer=signer,
    )
    wrapped = {
        "proofType": "x402-receipt",
        "proofPurpose": "commercial-tx",
        "proofObject": json.dumps(receipt712),
        "version": 1,
        "issuedAt": 1703123500,
    }
    add(
        "good-wrapper-proofobject-string",
        "proof wrapper whose proofObject is the envelope's JSON text",
        stage="verify",
        input=wrapped,
        signer=signer,
        expect="receipt",
    )
    add(
        "good-wrapper-offer",
        "proof wrapper holding an offer object",
        stage="verify",
        input={"proofType": "x402-offer", "proofPurpose": "commercial-tx", "proofObject": offer712},
        signer=signer,
    )
    unicode_receipt = {**RECEIPT, "resourceUrl": "https://api.example.com/ünï/😀?q=Ä", "payer": "0xAbCdEf" + "0" * 34}
    add(
        "good-eip712-unicode",
        "non-ASCII resourceUrl and mixed-case payer hashed as transmitted",
        stage="verify",
        input={"format": "eip712", "payload": unicode_receipt, "signature": eth_sign("receipt", unicode_receipt)},
        signer=signer,
    )

    es256 = jws({"alg": "ES256", "kid": KID}, jws_receipt_payload(), lambda m: ecdsa_raw(p256, m))
    add(
        "good-jws-es256-receipt",
        "ES256 receipt, transaction omitted",
        stage="verify",
        input={"format": "jws", "signature": es256},
        key=jwk_p256,
    )
    es256k_high = jws({"alg": "ES256K", "kid": KID}, jws_receipt_payload(), lambda m: ecdsa_raw(k1, m, high_s=True))
    add(
        "good-jws-es256k-high-s",
        "ES256K receipt with a high-S signature (accepted like the SDK)",
        stage="verify",
        input={"format": "jws", "signature": es256k_high},
        key=jwk_k1,
    )
    eddsa_offer = jws({"alg": "EdDSA", "kid": KID}, OFFER, ed.sign)
    add(
        "good-jws-eddsa-offer",
        "EdDSA offer with acceptIndex",
        stage="verify",
        input={"format": "jws", "acceptIndex": 0, "signature": eddsa_offer},
        key=jwk_ed,
    )
    ed_alg = jws({"alg": "Ed25519", "kid": KID}, jws_receipt_payload(), ed.sign)
    add(
        "good-jws-alg-ed25519",
        "alg 'Ed25519' (jose >= 5.10) with an Ed25519 key",
        stage="verify",
        input={"format": "jws", "signature": ed_alg},
        key=jwk_ed,
    )
    noncanon = (
        b'{ "version": 1, "resourceUrl": "https://api.example.com/premium-data",\n "network": "eip155:8453",'
        b' "payer": "0x857b06519E91e3A54538791bDbb0E22373e36b66", "issuedAt": 1703123456 }'
    )
    add(
        "good-jws-noncanonical-payload",
        "payload bytes with whitespace and unsorted keys verify as received",
        stage="verify",
        input={"format": "jws", "signature": jws({"alg": "EdDSA", "kid": KID}, noncanon, ed.sign)},
        key=jwk_ed,
    )
    add(
        "good-jws-header-jwk",
        "header jwk equal to the resolved key",
        stage="verify",
        input={"format": "jws", "signature": jws({"alg": "EdDSA", "kid": KID, "jwk": jwk_ed}, OFFER, ed.sign)},
        key=jwk_ed,
    )

    # ---- parse stage: structure
    add("bad-json-text", "not JSON", input_text='{"format": "eip712",', error="MalformedInput", reason="malformed-json")
    add(
        "bad-duplicate-key",
        "duplicate JSON key (JS keeps the last, others the first)",
        input_text='{"format":"eip712","format":"jws","payload":{},"signature":"0x"}',
        error="MalformedInput",
        reason="malformed-json",
    )
    add(
        "bad-top-level-array",
        "top level is not an object",
        input=[receipt712],
        error="MalformedInput",
        reason="malformed-artifact",
    )
    add(
        "bad-missing-format",
        "no format",
        input={k: v for k, v in receipt712.items() if k != "format"},
        error="MalformedInput",
        reason="missing-field",
    )
    add(
        "bad-format-not-string",
        "format is a number",
        input={**receipt712, "format": 712},
        error="MalformedInput",
        reason="bad-field-type",
    )
    add(
        "bad-unknown-format",
        "format cose",
        input={**receipt712, "format": "cose"},
        error="Unsupported",
        reason="unsupported-format",
    )
    add(
        "bad-missing-signature",
        "no signature",
        input={k: v for k, v in receipt712.items() if k != "signature"},
        error="MalformedInput",
        reason="missing-field",
    )
    add(
        "bad-eip712-missing-payload",
        "eip712 without payload",
        input={"format": "eip712", "signature": sig},
        error="MalformedInput",
        reason="missing-field",
    )
    add(
        "bad-payload-not-object",
        "payload is a string",
        input={**receipt712, "payload": "x"},
        error="MalformedInput",
        reason="bad-field-type",
    )
    add(
        "bad-eip712-offer-missing-validUntil",
        "validUntil must not be defaulted for EIP-712",
        input=variant(offer712, validUntil=_DELETE),
        error="MalformedInput",
        reason="missing-field",
    )
    add(
        "bad-eip712-receipt-missing-transaction",
        "transaction must not be defaulted for EIP-712",
        input=variant(receipt712, transaction=_DELETE),
        error="MalformedInput",
        reason="missing-field",
    )
    add(
        "bad-receipt-missing-payer",
        "receipt without payer",
        input=variant(receipt712, payer=_DELETE),
        error="MalformedInput",
        reason="missing-field",
    )
    add(
        "bad-offer-missing-version",
        "offer without version",
        input=variant(offer712, version=_DELETE),
        error="MalformedInput",
        reason="missing-field",
    )
    add(
        "bad-version-2",
        "version 2",
        input=variant(receipt712, version=2),
        error="Unsupported",
        reason="unsupported-version",
    )
    add(
        "bad-version-string",
        'version "1"',
        input=variant(receipt712, version="1"),
        error="MalformedInput",
        reason="bad-field-type",
    )
    add(
        "bad-version-float",
        "version 1.0 (a JSON float, not an integer)",
        input_text=json.dumps(receipt712).replace('"version": 1,', '"version": 1.0,'),
        error="MalformedInput",
        reason="bad-field-type",
    )
    add(
        "bad-version-true",
        "version true",
        input=variant(receipt712, version=True),
        error="MalformedInput",
        reason="bad-field-type",
    )
    add(
        "bad-issuedAt-float",
        "issuedAt 1703123456.5",
        input=variant(receipt712, issuedAt=1703123456.5),
        error="MalformedInput",
        reason="bad-field-type",
    )
    add(
        "bad-issuedAt-negative",
        "issuedAt -1 (not a uint256)",
        input=variant(receipt712, issuedAt=-1),
        error="MalformedInput",
        reason="bad-field-value",
    )
    add(
        "bad-validUntil-unsafe-integer",
        "validUntil 2**53 (JS would hash a rounded value)",
        input=variant(offer712, validUntil=2**53),
        error="MalformedInput",
        reason="bad-field-value",
    )
    add(
        "bad-payTo-number",
        "payTo is a number",
        input=variant(offer712, payTo=1),
        error="MalformedInput",
        reason="bad-field-type",
    )
    add(
        "bad-lone-surrogate",
        "a lone surrogate escape in a string field",
        input_text=json.dumps(receipt712).replace('"payer": "', '"payer": "\\ud800'),
        error="MalformedInput",
        reason="bad-field-value",
    )
    add(
        "bad-mixed-kind",
        "payload with offer and receipt members",
        input=variant(receipt712, scheme="exact"),
        error="MalformedInput",
        reason="malformed-artifact",
    )
    add(
        "bad-neither-kind",
        "payload with only common members",
        input={
            "format": "eip712",
            "payload": {"version": 1, "network": "eip155:1", "resourceUrl": "https://a.b/"},
            "signature": sig,
        },
        error="MalformedInput",
        reason="malformed-artifact",
    )

    # ---- parse stage: kind confusion
    add(
        "bad-receipt-expected-offer",
        "a receipt given where an offer is expected",
        input=receipt712,
        expect="offer",
        error="MalformedInput",
        reason="kind-mismatch",
    )
    add(
        "bad-offer-expected-receipt",
        "an offer given where a receipt is expected",
        input=offer712,
        expect="receipt",
        error="MalformedInput",
        reason="kind-mismatch",
    )
    add(
        "bad-receipt-in-offer-wrapper",
        "proofType x402-offer around a receipt",
        input={"proofType": "x402-offer", "proofPurpose": "commercial-tx", "proofObject": receipt712},
        error="MalformedInput",
        reason="kind-mismatch",
    )
    add(
        "bad-offer-in-receipt-wrapper",
        "proofType x402-receipt around an offer",
        input={"proofType": "x402-receipt", "proofPurpose": "commercial-tx", "proofObject": offer712},
        error="MalformedInput",
        reason="kind-mismatch",
    )
    add(
        "bad-jws-receipt-in-offer-wrapper",
        "JWS has no type binding: kind comes from the fields",
        input={
            "proofType": "x402-offer",
            "proofPurpose": "commercial-tx",
            "proofObject": {"format": "jws", "signature": es256},
        },
        error="MalformedInput",
        reason="kind-mismatch",
    )
    add(
        "bad-wrapper-disagrees-with-expect",
        "wrapper says receipt, caller expects offer",
        input={"proofType": "x402-receipt", "proofPurpose": "commercial-tx", "proofObject": receipt712},
        expect="offer",
        error="MalformedInput",
        reason="kind-mismatch",
    )
    add(
        "bad-unknown-proof-type",
        "proofType pop-jws is not an x402 proof",
        input={"proofType": "pop-jws", "proofPurpose": "shared-control", "proofObject": "x"},
        error="Unsupported",
        reason="unsupported-proof-type",
    )
    add(
        "bad-wrapper-missing-proofObject",
        "wrapper without proofObject",
        input={"proofType": "x402-receipt", "proofPurpose": "commercial-tx"},
        error="MalformedInput",
        reason="missing-field",
    )
    add(
        "bad-wrapper-proofObject-number",
        "proofObject is a number",
        input={"proofType": "x402-receipt", "proofPurpose": "commercial-tx", "proofObject": 5},
        error="MalformedInput",
        reason="bad-field-type",
    )

    # ---- parse stage: EIP-712 signature form (decided before any key is needed)
    add(
        "bad-eip712-sig-no-0x",
        "signature without 0x",
        input={**receipt712, "signature": sig[2:]},
        error="SignatureInvalid",
        reason="signature-encoding",
    )
    add(
        "bad-eip712-sig-0X",
        "signature with 0X",
        input={**receipt712, "signature": "0X" + sig[2:]},
        error="SignatureInvalid",
        reason="signature-encoding",
    )
    add(
        "bad-eip712-sig-64-bytes",
        "EIP-2098 compact signature",
        input={**receipt712, "signature": sig[:130]},
        error="SignatureInvalid",
        reason="signature-compact-unsupported",
    )
    add(
        "bad-eip712-sig-short",
        "63 bytes",
        input={**receipt712, "signature": sig[:128]},
        error="SignatureInvalid",
        reason="signature-encoding",
    )
    add(
        "bad-eip712-sig-odd-length",
        "129 hex digits (viem quirk not copied)",
        input={**receipt712, "signature": sig[:131]},
        error="SignatureInvalid",
        reason="signature-encoding",
    )
    add(
        "bad-eip712-sig-not-hex",
        "non-hex digits",
        input={**receipt712, "signature": sig[:-4] + "zz" + sig[-2:]},
        error="SignatureInvalid",
        reason="signature-encoding",
    )
    add(
        "bad-eip712-v-29",
        "v = 29",
        input={**receipt712, "signature": sig[:-2] + "1d"},
        error="SignatureInvalid",
        reason="signature-bad-v",
    )
    add(
        "bad-eip712-v-2",
        "v = 2",
        input={**receipt712, "signature": sig[:-2] + "02"},
        error="SignatureInvalid",
        reason="signature-bad-v",
    )

    # ---- parse stage: JWS structure and algorithms
    def hs256(m: bytes) -> bytes:
        return b"\x00" * 32

    add(
        "bad-jws-alg-none",
        "alg none",
        input={"format": "jws", "signature": jws({"alg": "none", "kid": KID}, jws_receipt_payload(), lambda m: b"")},
        error="SignatureInvalid",
        reason="alg-not-allowed",
    )
    add(
        "bad-jws-alg-hs256",
        "alg HS256",
        input={"format": "jws", "signature": jws({"alg": "HS256", "kid": KID}, jws_receipt_payload(), hs256)},
        error="SignatureInvalid",
        reason="alg-not-allowed",
    )
    add(
        "bad-jws-alg-rs256",
        "alg RS256",
        input={"format": "jws", "signature": jws({"alg": "RS256", "kid": KID}, jws_receipt_payload(), hs256)},
        error="SignatureInvalid",
        reason="alg-not-allowed",
    )
    add(
        "bad-jws-two-parts",
        "not three parts",
        input={"format": "jws", "signature": es256.rsplit(".", 1)[0]},
        error="MalformedInput",
        reason="malformed-artifact",
    )
    add(
        "bad-jws-header-not-base64url",
        "header with padding/plus",
        input={"format": "jws", "signature": "eyJ+" + es256},
        error="MalformedInput",
        reason="malformed-artifact",
    )
    add(
        "bad-jws-missing-kid",
        "header without kid",
        input={"format": "jws", "signature": jws({"alg": "EdDSA"}, OFFER, ed.sign)},
        error="MalformedInput",
        reason="kid-missing",
    )
    add(
        "bad-jws-missing-alg",
        "header without alg",
        input={"format": "jws", "signature": jws({"kid": KID}, OFFER, ed.sign)},
        error="MalformedInput",
        reason="missing-field",
    )
    add(
        "bad-jws-crit",
        "a crit header we cannot honour",
        input={
            "format": "jws",
            "signature": jws({"alg": "EdDSA", "kid": KID, "crit": ["b64"], "b64": False}, OFFER, ed.sign),
        },
        error="MalformedInput",
        reason="bad-field-value",
    )
    add(
        "bad-jws-header-jwk-not-object",
        "header jwk is a string",
        input={"format": "jws", "signature": jws({"alg": "EdDSA", "kid": KID, "jwk": "x"}, OFFER, ed.sign)},
        error="MalformedInput",
        reason="bad-field-type",
    )
    add(
        "bad-jws-payload-not-json",
        "payload is not JSON",
        input={"format": "jws", "signature": jws({"alg": "EdDSA", "kid": KID}, b"not json", ed.sign)},
        error="MalformedInput",
        reason="malformed-json",
    )
    add(
        "bad-jws-payload-duplicate-key",
        "payload with a duplicate key",
        input={
            "format": "jws",
            "signature": jws(
                {"alg": "EdDSA", "kid": KID},
                b'{"version":1,"payer":"a","payer":"b","network":"n","resourceUrl":"u","issuedAt":1}',
                ed.sign,
            ),
        },
        error="MalformedInput",
        reason="malformed-json",
    )
    add(
        "bad-jws-payload-array",
        "payload is an array",
        input={"format": "jws", "signature": jws({"alg": "EdDSA", "kid": KID}, b"[1]", ed.sign)},
        error="MalformedInput",
        reason="malformed-artifact",
    )
    add(
        "bad-jws-signature-not-base64url",
        "signature part has '+'",
        input={"format": "jws", "signature": es256.rsplit(".", 1)[0] + ".ab+c"},
        error="SignatureInvalid",
        reason="signature-encoding",
    )
    add(
        "bad-jws-version-2",
        "JWS receipt with version 2",
        input={
            "format": "jws",
            "signature": jws({"alg": "EdDSA", "kid": KID}, {**jws_receipt_payload(), "version": 2}, ed.sign),
        },
        error="Unsupported",
        reason="unsupported-version",
    )

    # ---- verify stage
    h, _, s = es256.split(".")
    other_payload = b64(compact_json({**jws_receipt_payload(), "payer": "0x0000000000000000000000000000000000000bad"}))
    add(
        "bad-jws-tampered-payload",
        "payload swapped after signing",
        stage="verify",
        input={"format": "jws", "signature": f"{h}.{other_payload}.{s}"},
        key=jwk_p256,
        error="SignatureInvalid",
        reason="signature-invalid",
    )
    raw = base64.urlsafe_b64decode(s + "==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    add(
        "bad-jws-der-signature",
        "ECDSA signature DER-encoded instead of raw r||s",
        stage="verify",
        input={"format": "jws", "signature": f"{h}.{_}.{b64(der)}"},
        key=jwk_p256,
        error="SignatureInvalid",
        reason="signature-der-encoded",
    )
    add(
        "bad-jws-signature-63-bytes",
        "ECDSA signature one byte short",
        stage="verify",
        input={"format": "jws", "signature": f"{h}.{_}.{b64(raw[:63])}"},
        key=jwk_p256,
        error="SignatureInvalid",
        reason="signature-encoding",
    )
    add(
        "bad-jws-alg-key-mismatch",
        "header ES256 but the kid resolves to a secp256k1 key",
        stage="verify",
        input={"format": "jws", "signature": es256},
        key=jwk_k1,
        error="SignatureInvalid",
        reason="alg-key-mismatch",
    )
    add(
        "bad-jws-eddsa-with-ec-key",
        "header EdDSA but the key is P-256",
        stage="verify",
        input={"format": "jws", "signature": eddsa_offer},
        key=jwk_p256,
        error="SignatureInvalid",
        reason="alg-key-mismatch",
    )
    add(
        "bad-jws-header-jwk-mismatch",
        "header jwk is another key than the kid's",
        stage="verify",
        input={
            "format": "jws",
            "signature": jws({"alg": "EdDSA", "kid": KID, "jwk": ed_public_jwk(OTHER_ED_SEED)}, OFFER, ed.sign),
        },
        key=jwk_ed,
        error="SignatureInvalid",
        reason="jwk-mismatch",
    )
    add(
        "bad-jws-wrong-key",
        "valid signature by another Ed25519 key",
        stage="verify",
        input={"format": "jws", "signature": eddsa_offer},
        key=ed_public_jwk(OTHER_ED_SEED),
        error="SignatureInvalid",
        reason="signature-invalid",
    )
    zero_r = "0x" + "00" * 32 + sig[66:]
    add(
        "bad-eip712-r-zero",
        "r = 0: no key is recoverable",
        stage="verify",
        input={**receipt712, "signature": zero_r},
        error="SignatureInvalid",
        reason="signature-invalid",
    )
    return assets


class _Delete:
    pass


_DELETE = _Delete()


def render(asset: dict[str, Any]) -> str:
    return json.dumps(asset, indent=2, sort_keys=True) + "\n"


def main() -> None:
    ASSETS.mkdir(exist_ok=True)
    for old in ASSETS.glob("*.json"):
        old.unlink()
    for name, asset in build_assets().items():
        (ASSETS / f"{name}.json").write_text(render(asset), encoding="utf-8")


if __name__ == "__main__":
    main()
