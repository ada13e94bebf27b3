"""Parse x402 offers/receipts — bare envelopes or OMATrust proof wrappers — into :class:`SignedArtifact`.

Parse before crypto: everything that can be decided without a key is decided here, so a broken artifact never
causes a DID/DNS look-up. That includes the *form* of the signature (EIP-712 ``0x`` + 130 hex with a valid ``v``;
JWS base64url parts and an algorithm on the allow-list), reported as :class:`SignatureInvalid`.

Decisions (where the sources leave room):

* Duplicate JSON keys anywhere in text we parse (envelope, wrapper, JWS header and payload) are rejected
  (MALFORMED_JSON): JavaScript keeps the last duplicate, other parsers the first, so such an artifact means
  different things to different verifiers.
* ``acceptIndex`` is an unsigned hint and is ignored. A ``payload`` member next to a JWS is ignored too: the JWS
  payload is always read from the JWS itself.
* The kind is decided by the payload's members (a JWS has no type binding); a declared kind (``expect`` or the
  wrapper's ``proofType``) that disagrees is KIND_MISMATCH.
* The wrapper's ``proofPurpose``/``version``/``issuedAt``/``expiresAt`` are not interpreted here.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import Any

from service.domain import ArtifactFormat, ArtifactKind, OfferPayload, Reason, ReceiptPayload, SignedArtifact
from service.errors import MalformedInput, SignatureInvalid, Unsupported

from .eip712 import offer_digest, receipt_digest, split_signature
from .encoding import b64url_decode
from .fields import detect_kind, offer_from_wire, receipt_from_wire
from .jsonstrict import loads_strict

# The x402 wrapper names (the OMATrust proofType of each artifact kind). How a review treats each proof type
# (order, purpose, binding, evidence class) is declared once in ``service.verdicts.registry``.
X402_PROOF_TYPES: dict[ArtifactKind, str] = {ArtifactKind.OFFER: "x402-offer", ArtifactKind.RECEIPT: "x402-receipt"}
PROOF_TYPES: dict[str, ArtifactKind] = {name: kind for kind, name in X402_PROOF_TYPES.items()}

# JWS algorithms we verify. Never `none`, HMAC (HS*) or RSA; the alg must also fit the key (see jws.py).
ALLOWED_JWS_ALGS = frozenset({"ES256", "ES256K", "EdDSA", "Ed25519"})


def _as_object(data: bytes | str | Mapping[str, Any], *, what: str) -> dict[str, Any]:
    value = loads_strict(data, what=what) if isinstance(data, bytes | bytearray | str) else data
    if not isinstance(value, Mapping):
        raise MalformedInput(Reason.MALFORMED_ARTIFACT, f"{what} must be a JSON object")
    return dict(value)


def _reconcile(declared: ArtifactKind | None, other: ArtifactKind | None, *, why: str) -> ArtifactKind | None:
    if declared is not None and other is not None and declared is not other:
        raise MalformedInput(Reason.KIND_MISMATCH, f"{why}: {other.value} given where {declared.value} is expected")
    return declared or other


def parse_artifact(*, data: bytes | str | Mapping[str, Any], expect: ArtifactKind | None = None) -> SignedArtifact:
    """Parse an envelope ``{format, payload?, signature, acceptIndex?}`` or an OMATrust proof wrapper
    ``{proofType, proofPurpose, proofObject, ...}`` (``proofObject`` an envelope object or its JSON text).

    Raises:
        MalformedInput: MALFORMED_JSON, MALFORMED_ARTIFACT, MISSING_FIELD, BAD_FIELD_TYPE, BAD_FIELD_VALUE,
            KID_MISSING, KIND_MISMATCH.
        Unsupported: UNSUPPORTED_PROOF_TYPE, UNSUPPORTED_FORMAT, UNSUPPORTED_VERSION.
        SignatureInvalid: the signature's form is wrong before any key is involved — SIGNATURE_ENCODING,
            SIGNATURE_COMPACT, SIGNATURE_BAD_V (EIP-712), ALG_NOT_ALLOWED (JWS).
    """
    envelope = _as_object(data, what="artifact")
    declared = expect
    if "proofType" in envelope:
        proof_type = envelope["proofType"]
        if not isinstance(proof_type, str):
            raise MalformedInput(Reason.BAD_FIELD_TYPE, "proofType must be a string")
        if proof_type not in PROOF_TYPES:
            raise Unsupported(Reason.UNSUPPORTED_PROOF_TYPE, f"proofType {proof_type!r} is not an x402 proof")
        declared = _reconcile(declared, PROOF_TYPES[proof_type], why="proofType")
        if "proofObject" not in envelope:
            raise MalformedInput(Reason.MISSING_FIELD, "proofObject is missing")
        inner = envelope["proofObject"]
        if not isinstance(inner, str | Mapping):
            raise MalformedInput(Reason.BAD_FIELD_TYPE, "proofObject must be an object or its JSON text")
        envelope = _as_object(inner, what="proofObject")

    fmt_value = envelope.get("format")
    if fmt_value is None and "format" not in envelope:
        raise MalformedInput(Reason.MISSING_FIELD, "format is missing")
    if not isinstance(fmt_value, str):
        raise MalformedInput(Reason.BAD_FIELD_TYPE, "format must be a string")
    if fmt_value not in ArtifactFormat._value2member_map_:
        raise Unsupported(Reason.UNSUPPORTED_FORMAT, f"format {fmt_value!r} is not eip712 or jws")
    if "signature" not in envelope:
        raise MalformedInput(Reason.MISSING_FIELD, "signature is missing")
    signature = envelope["signature"]
    if not isinstance(signature, str):
        raise MalformedInput(Reason.BAD_FIELD_TYPE, "signature must be a string")

    if ArtifactFormat(fmt_value) is ArtifactFormat.EIP712:
        return _parse_eip712(envelope, signature, declared)
    return _parse_jws(envelope, signature, declared)


def _payload_for(
    payload: Mapping[str, Any], declared: ArtifactKind | None, fmt: ArtifactFormat
) -> OfferPayload | ReceiptPayload:
    kind = _reconcile(declared, detect_kind(payload), why="payload fields")
    if kind is None:
        raise MalformedInput(Reason.MALFORMED_ARTIFACT, "payload is neither an offer nor a receipt")
    if kind is ArtifactKind.OFFER:
        return offer_from_wire(payload, fmt=fmt)
    return receipt_from_wire(payload, fmt=fmt)


def _parse_eip712(envelope: dict[str, Any], signature: str, declared: ArtifactKind | None) -> SignedArtifact:
    if "payload" not in envelope:
        raise MalformedInput(Reason.MISSING_FIELD, "payload is missing (required for eip712)")
    wire = envelope["payload"]
    if not isinstance(wire, Mapping):
        raise MalformedInput(Reason.BAD_FIELD_TYPE, "payload must be an object")
    payload = _payload_for(wire, declared, ArtifactFormat.EIP712)
    split_signature(signature)  # form only; recovery happens in recover_eip712_signer
    if isinstance(payload, OfferPayload):
        kind, digest = ArtifactKind.OFFER, offer_digest(payload)
    else:
        kind, digest = ArtifactKind.RECEIPT, receipt_digest(payload)
    return SignedArtifact(
        kind=kind,
        format=ArtifactFormat.EIP712,
        payload=payload,
        signature=signature,
        signing_input=digest,
        replay_key=digest.hex(),
        raw=envelope,
    )


def _decode_part(part: str, *, what: str) -> bytes:
    try:
        return b64url_decode(part)
    except ValueError:
        raise MalformedInput(Reason.MALFORMED_ARTIFACT, f"JWS {what} is not base64url") from None


@functools.lru_cache(maxsize=1024)
def _read_header(header_b64: str) -> tuple[str, str, Mapping[str, Any] | None]:
    """(alg, kid, jwk) of a protected header. Cached: a signer's header bytes repeat across its artifacts (errors
    are not cached — lru_cache stores only returns)."""
    header = _as_object(_decode_part(header_b64, what="header"), what="JWS header")
    if "alg" not in header:
        raise MalformedInput(Reason.MISSING_FIELD, "JWS header has no alg")
    alg = header["alg"]
    if not isinstance(alg, str):
        raise MalformedInput(Reason.BAD_FIELD_TYPE, "JWS alg must be a string")
    if alg not in ALLOWED_JWS_ALGS:
        raise SignatureInvalid(Reason.ALG_NOT_ALLOWED, f"JWS alg {alg!r} is not allowed")
    if "crit" in header:
        # No critical extension is understood here (RFC 7515 §4.1.11: then the JWS must be rejected).
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "JWS crit header parameters are not supported")
    kid = header.get("kid")
    if kid is None or kid == "":
        raise MalformedInput(Reason.KID_MISSING, "JWS header has no kid")
    if not isinstance(kid, str):
        raise MalformedInput(Reason.BAD_FIELD_TYPE, "JWS kid must be a string")
    header_jwk = header.get("jwk")
    if header_jwk is not None and not isinstance(header_jwk, Mapping):
        raise MalformedInput(Reason.BAD_FIELD_TYPE, "JWS header jwk must be an object")
    return alg, kid, header_jwk


def _parse_jws(envelope: dict[str, Any], compact: str, declared: ArtifactKind | None) -> SignedArtifact:
    parts = compact.split(".")
    if len(parts) != 3:
        raise MalformedInput(Reason.MALFORMED_ARTIFACT, "JWS must be compact serialization with three parts")
    header_b64, payload_b64, signature_b64 = parts
    alg, kid, header_jwk = _read_header(header_b64)
    try:
        b64url_decode(signature_b64)
    except ValueError:
        raise SignatureInvalid(Reason.SIGNATURE_ENCODING, "JWS signature is not base64url") from None

    # The payload is read from the bytes received, never from a re-serialization.
    wire = _as_object(_decode_part(payload_b64, what="payload"), what="JWS payload")
    payload = _payload_for(wire, declared, ArtifactFormat.JWS)
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return SignedArtifact(
        kind=ArtifactKind.OFFER if isinstance(payload, OfferPayload) else ArtifactKind.RECEIPT,
        format=ArtifactFormat.JWS,
        payload=payload,
        signature=compact,
        signing_input=signing_input,
        replay_key=hashlib.sha256(signing_input).hexdigest(),
        kid=kid,
        alg=alg,
        header_jwk=dict(header_jwk) if header_jwk is not None else None,
        raw=envelope,
    )
