"""Public/private JWK handling for the three JWS curves, plus EVM key helpers (issuer side and tests).

Loaded public-key objects are cached per JWK (keyed by its public members), so verifying many artifacts from one
issuer does not re-parse and re-validate the point every time.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import coincurve
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from service.domain import Reason
from service.errors import MalformedInput

from .encoding import address_from_public_key, b64url_decode, b64url_encode

P256 = "P-256"
SECP256K1 = "secp256k1"
ED25519 = "Ed25519"

# (kty, crv) → the JWS alg a key of that type signs with. "Ed25519" is the newer name jose ≥5.10 emits for EdDSA.
ALG_FOR_CURVE: dict[tuple[str, str], str] = {
    ("EC", P256): "ES256",
    ("EC", SECP256K1): "ES256K",
    ("OKP", ED25519): "EdDSA",
}
CURVE_FOR_ALG: dict[str, tuple[str, str]] = {
    "ES256": ("EC", P256),
    "ES256K": ("EC", SECP256K1),
    "EdDSA": ("OKP", ED25519),
    "Ed25519": ("OKP", ED25519),
}

PublicKeyParams = tuple[str, str, str, str]  # kty, crv, x, y ("" for OKP)
LoadedKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | coincurve.PublicKey


def public_params(jwk: Mapping[str, Any]) -> PublicKeyParams:
    """The public members of a supported JWK, as given (not re-encoded).

    Raises:
        MalformedInput: BAD_FIELD_VALUE for a key that is not EC P-256/secp256k1 or OKP Ed25519, or lacks x/y.
    """
    kty, crv, x, y = jwk.get("kty"), jwk.get("crv"), jwk.get("x"), jwk.get("y", "")
    if not (isinstance(kty, str) and isinstance(crv, str) and isinstance(x, str) and isinstance(y, str)):
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "JWK needs string kty, crv, x (and y for EC)")
    if (kty, crv) not in ALG_FOR_CURVE:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, f"JWK {kty}/{crv} is not a supported key type")
    if (kty == "EC") != bool(y):
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "EC JWKs need y, OKP JWKs have none")
    return kty, crv, x, y


def public_key_bytes(params: PublicKeyParams) -> bytes:
    """Raw public key bytes: Ed25519 → 32 bytes, EC → uncompressed ``04 || x || y``.

    Raises:
        MalformedInput: BAD_FIELD_VALUE when x/y are not base64url of the right length.
    """
    kty, _, x, y = params
    try:
        xb = b64url_decode(x)
        yb = b64url_decode(y) if kty == "EC" else b""
    except ValueError:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "JWK x/y are not base64url") from None
    if len(xb) != 32 or len(yb) != (32 if kty == "EC" else 0):
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "JWK x/y have the wrong length")
    return b"\x04" + xb + yb if kty == "EC" else xb


def same_public_key(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two JWKs hold the same public key (compared on decoded bytes, so encodings may differ)."""
    try:
        pa, pb = public_params(a), public_params(b)
        return pa[:2] == pb[:2] and public_key_bytes(pa) == public_key_bytes(pb)
    except MalformedInput:
        return False


@lru_cache(maxsize=512)
def load_public_key(params: PublicKeyParams) -> LoadedKey:
    """Load (and validate the point of) a public key; cached per JWK. Failures are not cached.

    Raises:
        MalformedInput: BAD_FIELD_VALUE when the bytes are not a point on the curve.
    """
    raw = public_key_bytes(params)
    crv = params[1]
    try:
        if crv == P256:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        if crv == SECP256K1:
            return coincurve.PublicKey(raw)
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, f"JWK is not a valid {crv} public key") from None


def jwk_to_public_jwk(jwk: Mapping[str, Any]) -> dict[str, str]:
    """Only the public members (kty, crv, x[, y]) of a JWK — drops ``d`` and any metadata.

    Raises:
        MalformedInput: BAD_FIELD_VALUE (see :func:`public_params`).
    """
    kty, crv, x, y = public_params(jwk)
    out = {"kty": kty, "crv": crv, "x": x}
    if y:
        out["y"] = y
    return out


def alg_for_jwk(jwk: Mapping[str, Any]) -> str:
    """The JWS alg a key signs with: P-256 → ES256, secp256k1 → ES256K, Ed25519 → EdDSA.

    Raises:
        MalformedInput: BAD_FIELD_VALUE (see :func:`public_params`).
    """
    kty, crv, _, _ = public_params(jwk)
    return ALG_FOR_CURVE[(kty, crv)]


def generate_private_jwk(*, crv: str) -> dict[str, str]:
    """A fresh private JWK (with ``d``) on ``crv`` ∈ {"P-256", "secp256k1", "Ed25519"}.

    Raises:
        ValueError: an unknown curve.
    """
    if crv == ED25519:
        sk = ed25519.Ed25519PrivateKey.generate()
        d = sk.private_bytes_raw()
        x = sk.public_key().public_bytes_raw()
        return {"kty": "OKP", "crv": ED25519, "x": b64url_encode(x), "d": b64url_encode(d)}
    if crv == P256:
        d_int = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
        return _ec_jwk(crv, d_int.to_bytes(32, "big"))
    if crv == SECP256K1:
        return _ec_jwk(crv, coincurve.PrivateKey().secret)
    raise ValueError(f"unsupported curve {crv!r}")


def private_jwk_from_secret(*, crv: str, secret: bytes) -> dict[str, str]:
    """A private JWK from a raw 32-byte secret (EC scalar or Ed25519 seed); deterministic test keys use it.

    Raises:
        ValueError: an unknown curve or an invalid secret.
    """
    if crv == ED25519:
        sk = ed25519.Ed25519PrivateKey.from_private_bytes(secret)
        x = sk.public_key().public_bytes_raw()
        return {"kty": "OKP", "crv": ED25519, "x": b64url_encode(x), "d": b64url_encode(secret)}
    if crv in (P256, SECP256K1):
        return _ec_jwk(crv, secret)
    raise ValueError(f"unsupported curve {crv!r}")


def _ec_jwk(crv: str, secret: bytes) -> dict[str, str]:
    if crv == SECP256K1:
        point = coincurve.PrivateKey(secret).public_key.format(compressed=False)
    else:
        key = ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        point = b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64url_encode(point[1:33]),
        "y": b64url_encode(point[33:]),
        "d": b64url_encode(secret),
    }


def private_scalar(private_jwk: Mapping[str, Any]) -> bytes:
    """The 32-byte ``d`` of a private JWK.

    Raises:
        MalformedInput: BAD_FIELD_VALUE when ``d`` is missing or not 32 bytes of base64url.
    """
    d = private_jwk.get("d")
    try:
        raw = b64url_decode(d) if isinstance(d, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "private JWK needs a 32-byte d")
    return raw


def generate_evm_private_key() -> bytes:
    """A fresh 32-byte secp256k1 private key for EIP-712 signing."""
    return bytes(coincurve.PrivateKey().secret)


def evm_address(*, private_key: bytes) -> str:
    """Checksummed EVM address of a 32-byte secp256k1 private key.

    Raises:
        ValueError: not a valid secp256k1 private key.
    """
    return address_from_public_key(coincurve.PrivateKey(private_key).public_key.format(compressed=False))


def evm_address_of_jwk(jwk: Mapping[str, Any]) -> str | None:
    """The EVM address of a secp256k1 JWK (so a DID document listing the key as a JWK can authorize its address);
    None for other curves or malformed keys."""
    try:
        params = public_params(jwk)
        if params[1] != SECP256K1:
            return None
        return address_from_public_key(public_key_bytes(params))
    except MalformedInput:
        return None
