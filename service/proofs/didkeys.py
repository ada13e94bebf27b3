"""Public keys embedded in self-describing DIDs (did:jwk, did:key), for comparing a DNS controller with a key.

Pure decoding only; the identity package resolves these for verification — here they are only compared.
"""

from __future__ import annotations

import base58
import coincurve
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from service.errors import MalformedInput

from .encoding import b64url_decode
from .jsonstrict import loads_strict
from .keys import public_key_bytes, public_params

# multicodec varint prefixes of the did:key keys the x402 SDK accepts: Ed25519 0xed, secp256k1 0xe7, P-256 0x1200.
_ED25519 = b"\xed\x01"
_SECP256K1 = b"\xe7\x01"
_P256 = b"\x80\x24"


def embedded_public_key(did: str) -> tuple[str, bytes] | None:
    """``(crv, raw public key bytes)`` of a did:jwk / did:key (EC keys uncompressed ``04‖x‖y``), or None when the
    DID is of another method or does not decode."""
    did = did.split("#", 1)[0]
    try:
        if did.startswith("did:jwk:"):
            jwk = loads_strict(b64url_decode(did[len("did:jwk:") :]), what="did:jwk")
            if not isinstance(jwk, dict):
                return None
            params = public_params(jwk)
            return params[1], public_key_bytes(params)
        if did.startswith("did:key:z"):
            raw = base58.b58decode(did[len("did:key:z") :])
            prefix, key = raw[:2], raw[2:]
            if prefix == _ED25519 and len(key) == 32:
                return "Ed25519", key
            if prefix == _SECP256K1 and len(key) == 33:
                return "secp256k1", coincurve.PublicKey(key).format(compressed=False)
            if prefix == _P256 and len(key) == 33:
                point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
                return "P-256", point.public_bytes(
                    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
                )
    except (MalformedInput, ValueError):
        return None
    return None
