"""Test key material built from `cryptography` / eth-account directly (independent of the code under test)."""

from __future__ import annotations

import base64
import json
from typing import Any

import base58
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from eth_account import Account

# multicodec varints (did:key): Ed25519 0xed, secp256k1 0xe7, P-256 0x1200
_MULTICODEC = {"Ed25519": b"\xed\x01", "secp256k1": b"\xe7\x01", "P-256": b"\x80\x24"}
ALGS = ("ES256", "ES256K", "EdDSA")
_CURVES = {"ES256": ("P-256", ec.SECP256R1), "ES256K": ("secp256k1", ec.SECP256K1)}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_jwk(alg: str) -> dict[str, str]:
    """A fresh private JWK for ``alg`` (ES256 → P-256, ES256K → secp256k1, EdDSA → Ed25519)."""
    if alg == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
        raw = serialization.Encoding.Raw
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url(key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)),
            "d": b64url(key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())),
        }
    crv, curve = _CURVES[alg]
    numbers = ec.generate_private_key(curve()).private_numbers()
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64url(numbers.public_numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.public_numbers.y.to_bytes(32, "big")),
        "d": b64url(numbers.private_value.to_bytes(32, "big")),
    }


def public_jwk(jwk: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y")}


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def did_key(jwk: dict[str, str]) -> str:
    """did:key (multibase base58btc, compressed EC point) → the kid ``did:key:z…#z…``."""
    if jwk["kty"] == "OKP":
        raw = _unb64(jwk["x"])
    else:
        y = int.from_bytes(_unb64(jwk["y"]), "big")
        raw = bytes([2 + (y & 1)]) + _unb64(jwk["x"])
    ident = "z" + base58.b58encode(_MULTICODEC[jwk["crv"]] + raw).decode()
    return f"did:key:{ident}#{ident}"


def did_jwk(jwk: dict[str, str]) -> str:
    """did:jwk of the public key → the kid ``did:jwk:…#0``."""
    return "did:jwk:" + b64url(json.dumps(public_jwk(jwk), separators=(",", ":")).encode()) + "#0"


def new_evm_key() -> tuple[str, str]:
    """→ (private key hex with 0x, checksummed address)."""
    account = Account.create()
    return "0x" + bytes(account.key).hex(), account.address


def did_document(did: str, *, jwks: dict[str, dict[str, str]] = {}, addresses: dict[str, str] = {}) -> dict[str, Any]:  # noqa: B006
    """A did:web document listing ``jwks`` (fragment → JWK) and EVM ``addresses`` (fragment → 0x…)."""
    methods: list[dict[str, Any]] = [
        {"id": f"{did}#{frag}", "type": "JsonWebKey2020", "controller": did, "publicKeyJwk": public_jwk(jwk)}
        for frag, jwk in jwks.items()
    ]
    methods += [
        {
            "id": f"{did}#{frag}",
            "type": "EcdsaSecp256k1RecoveryMethod2020",
            "controller": did,
            "blockchainAccountId": f"eip155:1:{address}",
        }
        for frag, address in addresses.items()
    ]
    return {
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": [m["id"] for m in methods],
    }
