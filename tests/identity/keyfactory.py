"""Test keys and *independent* encodings of them (hand-written base58 and multicodec prefixes, JWK coordinates from
``cryptography``'s own numbers), so the code under test is never its own reference."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# unsigned-varint multicodec prefixes, written out by hand (multicodec table: ed25519-pub 0xed,
# secp256k1-pub 0xe7, p256-pub 0x1200)
PREFIX = {"Ed25519": b"\xed\x01", "secp256k1": b"\xe7\x01", "P-256": b"\x80\x24"}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


@dataclass(frozen=True)
class TestKey:
    crv: str
    jwk: dict[str, str]  # public JWK built from the library's numbers
    public_bytes: bytes  # Ed25519 raw 32 bytes; EC compressed SEC1 point
    private_jwk: dict[str, str]

    @property
    def multibase(self) -> str:
        return "z" + b58encode(PREFIX[self.crv] + self.public_bytes)

    @property
    def did_key(self) -> str:
        return "did:key:" + self.multibase

    @property
    def did_jwk(self) -> str:
        return "did:jwk:" + b64u(json.dumps(self.jwk).encode())


def make_key(crv: str) -> TestKey:
    if crv == "Ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        d = private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
        return TestKey(crv, jwk, raw, {**jwk, "d": b64u(d)})
    curve = {"P-256": ec.SECP256R1(), "secp256k1": ec.SECP256K1()}[crv]
    ec_private = ec.generate_private_key(curve)
    numbers = ec_private.public_key().public_numbers()
    compressed = ec_private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    jwk = {"kty": "EC", "crv": crv, "x": b64u(numbers.x.to_bytes(32, "big")), "y": b64u(numbers.y.to_bytes(32, "big"))}
    d_bytes = ec_private.private_numbers().private_value.to_bytes(32, "big")
    return TestKey(crv, jwk, compressed, {**jwk, "d": b64u(d_bytes)})


CURVES = ("Ed25519", "secp256k1", "P-256")
