"""The merchant's offer/receipt signer, and the did:web document that authorizes it.

Two formats, as in the x402 offer-and-receipt extension: ``eip712`` (a secp256k1 key; verifiers recover the address
and look for it in the did.json as ``blockchainAccountId``) and ``jws`` (ES256 / ES256K / EdDSA key; the protected
header's ``kid`` is ``did:web:<host>#key-1``, resolved through the did.json). Signing is the ``service.proofs`` issuer
code; this module only holds the key.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from service.domain import OfferPayload, ReceiptPayload
from service.proofs import (
    evm_address,
    generate_evm_private_key,
    generate_private_jwk,
    jwk_to_public_jwk,
    sign_offer_eip712,
    sign_offer_jws,
    sign_receipt_eip712,
    sign_receipt_jws,
)

SignerFormat = Literal["eip712", "jws"]
JWS_CURVES = {"ES256": "P-256", "ES256K": "secp256k1", "EdDSA": "Ed25519"}


def did_web(host: str, *path: str) -> str:
    """``did:web`` for ``host`` (``host:port`` gets its colon percent-encoded) and optional path segments."""
    return ":".join(["did:web", host.replace(":", "%3A"), *path])


@dataclass(frozen=True)
class OfferReceiptSigner:
    """Signs offers and receipts for the service ``did`` in one format.

    Build with :meth:`eip712` or :meth:`jws`; :meth:`did_document` is the did.json to publish at
    ``https://<host>/.well-known/did.json`` (the signer listed under ``assertionMethod``).
    """

    did: str
    format: SignerFormat
    evm_key: bytes | None = None
    private_jwk: Mapping[str, str] | None = field(default=None, repr=False)
    key_fragment: str = "key-1"
    chain_hint: str = "eip155:1"  # CAIP-2 prefix of blockchainAccountId (matching is chain-agnostic)

    @classmethod
    def eip712(cls, *, did: str, private_key: bytes | None = None, key_fragment: str = "key-1") -> OfferReceiptSigner:
        """An EIP-712 signer (a fresh secp256k1 key when none is given)."""
        return cls(did=did, format="eip712", evm_key=private_key or generate_evm_private_key(),
                   key_fragment=key_fragment)  # fmt: skip

    @classmethod
    def jws(
        cls, *, did: str, private_jwk: Mapping[str, str] | None = None, alg: str = "ES256", key_fragment: str = "key-1"
    ) -> OfferReceiptSigner:
        """A JWS signer; a fresh key for ``alg`` (ES256, ES256K, EdDSA) when no private JWK is given.

        Raises:
            KeyError: unknown ``alg``.
        """
        return cls(did=did, format="jws", private_jwk=private_jwk or generate_private_jwk(crv=JWS_CURVES[alg]),
                   key_fragment=key_fragment)  # fmt: skip

    @property
    def kid(self) -> str:
        return f"{self.did}#{self.key_fragment}"

    @property
    def address(self) -> str | None:
        """The EVM address of an EIP-712 signer."""
        return evm_address(private_key=self.evm_key) if self.evm_key is not None else None

    def sign_offer(self, payload: OfferPayload, *, accept_index: int | None = None) -> dict[str, Any]:
        """A signed offer envelope (``acceptIndex`` is the unsigned hint)."""
        if self.format == "jws":
            assert self.private_jwk is not None
            return sign_offer_jws(
                payload=payload, private_jwk=self.private_jwk, kid=self.kid, accept_index=accept_index
            )
        assert self.evm_key is not None
        return sign_offer_eip712(payload=payload, private_key=self.evm_key, accept_index=accept_index)

    def sign_receipt(self, payload: ReceiptPayload) -> dict[str, Any]:
        """A signed receipt envelope."""
        if self.format == "jws":
            assert self.private_jwk is not None
            return sign_receipt_jws(payload=payload, private_jwk=self.private_jwk, kid=self.kid)
        assert self.evm_key is not None
        return sign_receipt_eip712(payload=payload, private_key=self.evm_key)

    def verification_method(self) -> dict[str, Any]:
        if self.format == "jws":
            assert self.private_jwk is not None
            return {"id": self.kid, "type": "JsonWebKey2020", "controller": self.did,
                    "publicKeyJwk": jwk_to_public_jwk(self.private_jwk)}  # fmt: skip
        return {"id": self.kid, "type": "EcdsaSecp256k1RecoveryMethod2020", "controller": self.did,
                "blockchainAccountId": f"{self.chain_hint}:{self.address}"}  # fmt: skip

    def did_document(self) -> dict[str, Any]:
        """The did.json that authorizes this signer for ``did`` (listed under ``assertionMethod``)."""
        return {
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"],
            "id": self.did,
            "verificationMethod": [self.verification_method()],
            "assertionMethod": [self.kid],
        }

    def dns_txt(self) -> str:
        """The ``_controllers.<domain>`` TXT record authorizing this signer (the alternative to did.json)."""
        if self.format == "eip712":
            return f"v=1;controller=did:pkh:eip155:1:{self.address}"
        assert self.private_jwk is not None
        public = json.dumps(jwk_to_public_jwk(self.private_jwk), separators=(",", ":"), sort_keys=True).encode()
        return "v=1;controller=did:jwk:" + base64.urlsafe_b64encode(public).rstrip(b"=").decode()
