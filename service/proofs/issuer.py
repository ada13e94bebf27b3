"""Issuer side: sign x402 offers/receipts (EIP-712 and JWS) and wrap them as OMATrust proofs.

Servers use this to attach offers/receipts; tests and the demo use it to make artifacts. Output matches the TS SDK
(``@x402/extensions`` 2.27) byte for byte where bytes matter: the EIP-712 envelope is
``{format, [acceptIndex], payload, signature}`` with a ``0x`` r‖s‖v signature (v = 27/28, low-S); the JWS envelope
is ``{format, [acceptIndex], signature}`` — no ``payload`` member — whose protected header is exactly
``{"alg","kid"}`` and whose payload is the SDK's canonical JSON (``transaction`` omitted when empty).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import coincurve
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from service.domain import ArtifactKind, OfferPayload, ReceiptPayload

from .canonical import canonical_json
from .eip712 import offer_digest, receipt_digest
from .encoding import b64url_encode
from .fields import offer_to_wire, receipt_to_wire
from .keys import P256, SECP256K1, alg_for_jwk, private_scalar
from .parse import X402_PROOF_TYPES

PROOF_PURPOSE = "commercial-tx"


def _sign_digest(digest: bytes, private_key: bytes) -> str:
    sig = coincurve.PrivateKey(private_key).sign_recoverable(digest, hasher=None)  # r‖s‖recid, low-S
    return "0x" + sig[:64].hex() + bytes((sig[64] + 27,)).hex()


def _envelope(fmt: str, accept_index: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"format": fmt}
    if accept_index is not None:
        out["acceptIndex"] = accept_index
    return out


def sign_offer_eip712(*, payload: OfferPayload, private_key: bytes, accept_index: int | None = None) -> dict[str, Any]:
    """An EIP-712 signed offer envelope.

    Raises:
        ValueError: ``private_key`` is not a valid secp256k1 secret.
    """
    out = _envelope("eip712", accept_index)
    out["payload"] = offer_to_wire(payload)
    out["signature"] = _sign_digest(offer_digest(payload), private_key)
    return out


def sign_receipt_eip712(*, payload: ReceiptPayload, private_key: bytes) -> dict[str, Any]:
    """An EIP-712 signed receipt envelope (``transaction`` always present, ``""`` when absent).

    Raises:
        ValueError: ``private_key`` is not a valid secp256k1 secret.
    """
    return {
        "format": "eip712",
        "payload": receipt_to_wire(payload),
        "signature": _sign_digest(receipt_digest(payload), private_key),
    }


def _jws_sign(alg: str, private_jwk: Mapping[str, Any], signing_input: bytes) -> bytes:
    d = private_scalar(private_jwk)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.from_private_bytes(d).sign(signing_input)
    if private_jwk.get("crv") == SECP256K1:
        der = coincurve.PrivateKey(d).sign(hashlib.sha256(signing_input).digest(), hasher=None)
    elif private_jwk.get("crv") == P256:
        key = ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1())
        der = key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    else:  # pragma: no cover - alg_for_jwk already refused other curves
        raise ValueError("unsupported curve")
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sign_jws(*, payload: Mapping[str, Any], private_jwk: Mapping[str, Any], kid: str) -> str:
    """Compact JWS over the canonical JSON of ``payload``; header exactly ``{"alg","kid"}`` (alg from the key).

    Raises:
        MalformedInput: BAD_FIELD_VALUE for an unsupported or incomplete private JWK.
    """
    alg = alg_for_jwk(private_jwk)
    # JSON.stringify({alg, kid}) in the SDK: insertion order, no spaces, non-ASCII kept as UTF-8.
    header = json.dumps({"alg": alg, "kid": kid}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    signing_input = f"{b64url_encode(header)}.{b64url_encode(canonical_json(payload))}"
    signature = _jws_sign(alg, private_jwk, signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


def sign_offer_jws(
    *, payload: OfferPayload, private_jwk: Mapping[str, Any], kid: str, accept_index: int | None = None
) -> dict[str, Any]:
    """A JWS signed offer envelope ``{format: "jws", [acceptIndex], signature}``.

    Raises:
        MalformedInput: BAD_FIELD_VALUE for an unsupported or incomplete private JWK.
    """
    out = _envelope("jws", accept_index)
    out["signature"] = sign_jws(payload=offer_to_wire(payload), private_jwk=private_jwk, kid=kid)
    return out


def sign_receipt_jws(*, payload: ReceiptPayload, private_jwk: Mapping[str, Any], kid: str) -> dict[str, Any]:
    """A JWS signed receipt envelope ``{format: "jws", signature}``; ``transaction`` omitted when empty.

    Raises:
        MalformedInput: BAD_FIELD_VALUE for an unsupported or incomplete private JWK.
    """
    wire = receipt_to_wire(payload, omit_empty_transaction=True)
    return {"format": "jws", "signature": sign_jws(payload=wire, private_jwk=private_jwk, kid=kid)}


def proof_wrapper(*, artifact: Mapping[str, Any], kind: ArtifactKind, issued_at: int | None = None) -> dict[str, Any]:
    """The OMATrust proof wrapper for a signed artifact, as the OMATrust SDK builds it:
    ``{proofType: "x402-receipt"|"x402-offer", proofPurpose: "commercial-tx", proofObject, version: 1[, issuedAt]}``.

    ``issuedAt`` (when the proof was wrapped) is included only when given — this module never reads the clock.
    """
    out: dict[str, Any] = {
        "proofType": X402_PROOF_TYPES[kind],
        "proofPurpose": PROOF_PURPOSE,
        "proofObject": dict(artifact),
        "version": 1,
    }
    if issued_at is not None:
        out["issuedAt"] = issued_at
    return out
