"""Shared test scenario: one service (the did:web loopback host), its signing keys, and SDK create specs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tests.interop.keys import ALGS, did_document, did_jwk, did_key, new_evm_key, new_jwk

NETWORK = "eip155:8453"
ASSET = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"  # USDC on Base, mixed case as transmitted
PAYER = "0x857b06519E91e3A54538791bDbb0E22373e36b66"
TRANSACTION = "0x" + "ab" * 32
KID_METHODS = ("web", "key", "jwk")


@dataclass
class Keys:
    """An EVM key and one JWK per JWS alg, as a service would hold them."""

    evm_key: str = ""
    evm_address: str = ""
    jwks: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def new(cls) -> Keys:
        evm_key, evm_address = new_evm_key()
        return cls(evm_key=evm_key, evm_address=evm_address, jwks={alg: new_jwk(alg) for alg in ALGS})

    def kid(self, method: str, alg: str, did: str) -> str:
        """The kid for ``alg``'s key: a did:web fragment of ``did``, or a did:key / did:jwk."""
        if method == "web":
            return f"{did}#key-{alg}"
        return did_key(self.jwks[alg]) if method == "key" else did_jwk(self.jwks[alg])

    def document(self, did: str, *, evm: bool = True, jws: bool = True) -> dict[str, Any]:
        """did:web document listing the EVM address (``#evm``) and every JWK (``#key-<alg>``)."""
        return did_document(
            did,
            jwks={f"key-{alg}": jwk for alg, jwk in self.jwks.items()} if jws else {},
            addresses={"evm": self.evm_address} if evm else {},
        )


def now() -> int:
    return int(time.time()) - 60


def offer_spec(*, keys: Keys, fmt: str, resource_url: str, pay_to: str, alg: str = "", kid: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": "offer",
        "format": fmt,
        "now": now(),
        "resourceUrl": resource_url,
        "scheme": "exact",
        "network": NETWORK,
        "asset": ASSET,
        "payTo": pay_to,
        "amount": "10000",
        "offerValiditySeconds": 600,
    }
    return {**spec, **_signing(keys, fmt, alg, kid)}


def receipt_spec(
    *, keys: Keys, fmt: str, resource_url: str, alg: str = "", kid: str = "", transaction: str | None = TRANSACTION
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": "receipt",
        "format": fmt,
        "now": now(),
        "resourceUrl": resource_url,
        "network": NETWORK,
        "payer": PAYER,
    }
    if transaction is not None:
        spec["transaction"] = transaction
    return {**spec, **_signing(keys, fmt, alg, kid)}


def _signing(keys: Keys, fmt: str, alg: str, kid: str) -> dict[str, Any]:
    if fmt == "eip712":
        return {"privateKey": keys.evm_key}
    return {"jwk": keys.jwks[alg], "kid": kid, "alg": alg}
