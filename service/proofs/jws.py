"""JWS (compact) signature verification for x402 artifacts: ES256, ES256K, EdDSA/Ed25519.

Security options, on purpose:

* the alg comes from the header but must be on the allow-list (never ``none``, HS*, RS*) *and* fit the resolved
  key's curve — the key, not the header, decides what is acceptable;
* ECDSA signatures are raw ``r‖s`` (64 bytes) as RFC 7518 requires; DER is refused (SIGNATURE_DER);
* high-S ES256K signatures are accepted like the TS SDK does (they are normalized before libsecp256k1 sees them);
  replay protection never relies on signature bytes, so malleability does not matter here;
* an optional header ``jwk`` must hold the same public key as the one resolved from ``kid`` (JWK_MISMATCH);
* verification is over the bytes received (``artifact.signing_input``); nothing is re-canonicalized.

``verify_jws`` does not check that ``key.id`` equals the ``kid``: resolving the kid to the key is the caller's job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import coincurve
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from service.domain import ArtifactFormat, Reason, SignedArtifact, VerificationKey
from service.errors import SignatureInvalid

from .encoding import b64url_decode
from .keys import CURVE_FOR_ALG, load_public_key, public_params, same_public_key
from .parse import ALLOWED_JWS_ALGS

_ES256 = ec.ECDSA(hashes.SHA256())
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SECP256K1_HALF_N = _SECP256K1_N // 2


def _looks_like_der(sig: bytes) -> bool:
    try:
        decode_dss_signature(sig)
    except ValueError:
        return False
    return True


def _raw_rs(sig: bytes) -> tuple[int, int]:
    if len(sig) != 64:
        if _looks_like_der(sig):
            raise SignatureInvalid(Reason.SIGNATURE_DER, "ECDSA JWS signatures must be raw r||s, not DER")
        raise SignatureInvalid(Reason.SIGNATURE_ENCODING, f"ECDSA JWS signature must be 64 bytes, got {len(sig)}")
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")


def verify_jws(*, artifact: SignedArtifact, key: VerificationKey) -> None:
    """Verify a JWS artifact's signature with the key resolved from its ``kid``.

    Raises:
        SignatureInvalid: ALG_NOT_ALLOWED, ALG_KEY_MISMATCH (alg does not fit the key, or the key is an EVM
            address without a JWK), JWK_MISMATCH, SIGNATURE_ENCODING, SIGNATURE_DER, SIGNATURE_INVALID;
            UNSUPPORTED_FORMAT when given an EIP-712 artifact.
        MalformedInput: BAD_FIELD_VALUE when the resolved JWK is not a valid public key.
    """
    if artifact.format is not ArtifactFormat.JWS:
        raise SignatureInvalid(Reason.UNSUPPORTED_FORMAT, "not a JWS artifact")
    alg = artifact.alg or ""
    if alg not in ALLOWED_JWS_ALGS:
        raise SignatureInvalid(Reason.ALG_NOT_ALLOWED, f"JWS alg {alg!r} is not allowed")
    if key.jwk is None:
        raise SignatureInvalid(Reason.ALG_KEY_MISMATCH, f"key {key.id} has no public JWK")
    jwk: Mapping[str, Any] = key.jwk
    kty_crv = (jwk.get("kty"), jwk.get("crv"))
    if kty_crv != CURVE_FOR_ALG[alg]:
        raise SignatureInvalid(Reason.ALG_KEY_MISMATCH, f"alg {alg} does not fit a {kty_crv[0]}/{kty_crv[1]} key")
    declared = jwk.get("alg")
    if declared is not None and declared != alg and {declared, alg} != {"EdDSA", "Ed25519"}:
        raise SignatureInvalid(Reason.ALG_KEY_MISMATCH, f"key is for alg {declared}, JWS says {alg}")
    if jwk.get("use", "sig") != "sig":
        raise SignatureInvalid(Reason.ALG_KEY_MISMATCH, "key is not a signature key (use != sig)")
    if artifact.header_jwk is not None and not same_public_key(artifact.header_jwk, jwk):
        raise SignatureInvalid(Reason.JWK_MISMATCH, "header jwk differs from the key resolved from kid")

    public = load_public_key(public_params(jwk))
    try:
        sig = b64url_decode(artifact.signature.rpartition(".")[2])
    except ValueError:
        raise SignatureInvalid(Reason.SIGNATURE_ENCODING, "JWS signature is not base64url") from None
    message = artifact.signing_input

    if isinstance(public, ec.EllipticCurvePublicKey):
        r, s = _raw_rs(sig)
        try:
            public.verify(encode_dss_signature(r, s), message, _ES256)
        except InvalidSignature:
            raise SignatureInvalid(Reason.SIGNATURE_INVALID, "ES256 signature does not verify") from None
        return
    if isinstance(public, coincurve.PublicKey):
        r, s = _raw_rs(sig)
        if not (0 < r < _SECP256K1_N and 0 < s < _SECP256K1_N):
            raise SignatureInvalid(Reason.SIGNATURE_INVALID, "ES256K r/s out of range")
        if s > _SECP256K1_HALF_N:
            s = _SECP256K1_N - s  # libsecp256k1 only verifies low-S; the SDK (and RFC 7518) accept both
        if not public.verify(encode_dss_signature(r, s), hashlib.sha256(message).digest(), hasher=None):
            raise SignatureInvalid(Reason.SIGNATURE_INVALID, "ES256K signature does not verify")
        return
    if isinstance(public, ed25519.Ed25519PublicKey):
        if len(sig) != 64:
            raise SignatureInvalid(Reason.SIGNATURE_ENCODING, f"Ed25519 signature must be 64 bytes, got {len(sig)}")
        try:
            public.verify(sig, message)
        except InvalidSignature:
            raise SignatureInvalid(Reason.SIGNATURE_INVALID, "EdDSA signature does not verify") from None
        return
    raise SignatureInvalid(Reason.ALG_KEY_MISMATCH, "unsupported key")  # pragma: no cover - exhaustive above
