"""Pure decoding of public key material found in DID documents and DID strings.

Turns a ``publicKeyJwk``, a ``publicKeyMultibase`` (multicodec-prefixed, base58btc), a raw base58 Ed25519 key
or a CAIP-10 ``blockchainAccountId`` into the two shapes ``VerificationKey`` holds: a public JWK with only
``kty``/``crv``/``x``[/``y``], or a lower-case EVM address. EC points are checked to be on their curve here, so a
key that gets past this module can be handed to a verifier as is.

Errors are ``KeyMaterialError`` (``service.errors``; also a ``ValueError``); callers map it to the reason that
fits their context (a bad did:key is ``BAD_DID``, a bad key inside a fetched document is ``DID_DOCUMENT_INVALID``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import base58
from cryptography.hazmat.primitives.asymmetric import ec

from service.errors import KeyMaterialError as KeyMaterialError  # raised here; re-exported for callers

# multicodec codes of the public keys the x402 SDK accepts in did:key (PROTOCOLS.md §1)
MULTICODEC_ED25519_PUB = 0xED
MULTICODEC_SECP256K1_PUB = 0xE7
MULTICODEC_P256_PUB = 0x1200

_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")
_CAIP10_EIP155_RE = re.compile(r"^eip155:[0-9]{1,32}:(0x[0-9a-fA-F]{40})$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_EC_CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "secp256k1": ec.SECP256K1()}


def b64url_decode(value: str) -> bytes:
    """Strict base64url (RFC 7515: no padding expected; tolerated when present).

    Raises:
        KeyMaterialError: characters outside the url-safe alphabet or an impossible length.
    """
    stripped = value.rstrip("=")
    if not _B64URL_RE.match(stripped) or len(stripped) % 4 == 1:
        raise KeyMaterialError("not base64url")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise KeyMaterialError("not base64url") from exc


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(*, jwk: Any) -> dict[str, str]:
    """Validate a public JWK and return only ``kty``, ``crv``, ``x`` (and ``y`` for EC).

    Supported: EC P-256, EC secp256k1, OKP Ed25519. A JWK carrying the private ``d`` is refused: the key is
    published, so anyone can sign with it — stripping ``d`` would make a compromised key usable.

    Raises:
        KeyMaterialError: not an object, private key, bad encoding, point not on the curve (``unsupported``
            for other key types: RSA, X25519, symmetric, unknown curves).
    """
    if not isinstance(jwk, Mapping):
        raise KeyMaterialError("publicKeyJwk is not an object")
    if "d" in jwk:
        raise KeyMaterialError("JWK contains a private key ('d')")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if not isinstance(kty, str) or not isinstance(crv, str | None):
        raise KeyMaterialError("JWK kty/crv must be strings")
    if kty == "OKP" and crv == "Ed25519":
        x = _coordinate(jwk, "x", 32)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(x)}
    if kty == "EC" and crv in _EC_CURVES:
        x, y = _coordinate(jwk, "x", 32), _coordinate(jwk, "y", 32)
        _check_on_curve(crv, b"\x04" + x + y)
        return {"kty": "EC", "crv": crv, "x": b64url_encode(x), "y": b64url_encode(y)}
    raise KeyMaterialError(f"unsupported JWK kty={kty!r} crv={crv!r}", unsupported=True)


def multibase_to_jwk(*, value: str, raw_ed25519: bool = False) -> dict[str, str]:
    """``z`` + base58btc(varint(multicodec) ‖ key) → public JWK (compressed EC points are decompressed).

    ``raw_ed25519=True`` also accepts the early ``Ed25519VerificationKey2020`` form: ``z`` + base58btc of the
    bare 32-byte key, without the multicodec prefix.

    Raises:
        KeyMaterialError: not ``z``-base58btc, bad point, wrong length; ``unsupported`` for other multicodecs.
    """
    if not isinstance(value, str) or not value.startswith("z") or len(value) < 2:
        raise KeyMaterialError("publicKeyMultibase must be 'z' + base58btc")
    data = base58_decode(value[1:])
    if raw_ed25519 and len(data) == 32:
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(data)}
    codec, key = read_multicodec(data)
    if codec == MULTICODEC_ED25519_PUB:
        if len(key) != 32:
            raise KeyMaterialError("Ed25519 key must be 32 bytes")
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(key)}
    if codec == MULTICODEC_SECP256K1_PUB:
        return ec_point_to_jwk(crv="secp256k1", point=key)
    if codec == MULTICODEC_P256_PUB:
        return ec_point_to_jwk(crv="P-256", point=key)
    raise KeyMaterialError(f"unsupported multicodec 0x{codec:x}", unsupported=True)


def base58_decode(value: str) -> bytes:
    """Bitcoin-alphabet base58.

    Raises:
        KeyMaterialError: a character outside the alphabet.
    """
    try:
        return base58.b58decode(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise KeyMaterialError("not base58btc") from exc


def read_multicodec(data: bytes) -> tuple[int, bytes]:
    """Split an unsigned-varint multicodec prefix from the key bytes.

    Raises:
        KeyMaterialError: truncated or over-long varint.
    """
    codec = 0
    for i, byte in enumerate(data[:4]):
        codec |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return codec, data[i + 1 :]
    raise KeyMaterialError("bad multicodec varint")


def ec_point_to_jwk(*, crv: str, point: bytes) -> dict[str, str]:
    """SEC1 point (33-byte compressed or 65-byte uncompressed) on P-256/secp256k1 → JWK with x, y.

    Raises:
        KeyMaterialError: not a point on the curve.
    """
    if len(point) not in (33, 65):
        raise KeyMaterialError(f"{crv} point must be 33 or 65 bytes")
    key = _check_on_curve(crv, point)
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64url_encode(numbers.x.to_bytes(32, "big")),
        "y": b64url_encode(numbers.y.to_bytes(32, "big")),
    }


def caip10_evm_address(value: Any) -> str | None:
    """``eip155:<chain>:0x…`` → lower-case address; None for other namespaces or shapes (skipped, not fatal)."""
    if not isinstance(value, str):
        return None
    match = _CAIP10_EIP155_RE.match(value.strip())
    return match.group(1).lower() if match else None


def evm_address(value: Any) -> str | None:
    """A bare ``0x`` + 40 hex ``ethereumAddress`` → lower-case; None otherwise."""
    if isinstance(value, str) and _ADDRESS_RE.match(value.strip()):
        return value.strip().lower()
    return None


def _coordinate(jwk: Mapping[str, Any], name: str, size: int) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise KeyMaterialError(f"JWK {name!r} missing")
    raw = b64url_decode(value)
    if len(raw) != size:
        raise KeyMaterialError(f"JWK {name!r} must be {size} bytes")
    return raw


def _check_on_curve(crv: str, point: bytes) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_EC_CURVES[crv], point)
    except ValueError as exc:
        raise KeyMaterialError(f"not a point on {crv}") from exc
