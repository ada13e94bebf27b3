"""PURE x402 offer/receipt core: parsing, EIP-712 recovery, JWS verification, receipt binding, and the issuer side
(signing). Takes bytes, keys and times; does no I/O.

Typical verifier flow: :func:`parse_artifact` → :func:`recover_eip712_signer` (EIP-712) or resolve the ``kid`` and
:func:`verify_jws` (JWS); then ``service.verdicts`` decides authorization and :func:`check_binding` binds a receipt
to a review; replay by ``replay_key``.
"""

from __future__ import annotations

from .binding import check_binding, check_offer_not_expired, offer_expired
from .canonical import canonical_json
from .eip712 import (
    OFFER_DOMAIN_SEPARATOR,
    OFFER_TYPEHASH,
    RECEIPT_DOMAIN_SEPARATOR,
    RECEIPT_TYPEHASH,
    offer_digest,
    receipt_digest,
    recover_eip712_signer,
)
from .fields import offer_to_wire, receipt_to_wire
from .issuer import (
    proof_wrapper,
    sign_jws,
    sign_offer_eip712,
    sign_offer_jws,
    sign_receipt_eip712,
    sign_receipt_jws,
)
from .jws import verify_jws
from .keys import (
    alg_for_jwk,
    evm_address,
    generate_evm_private_key,
    generate_private_jwk,
    jwk_to_public_jwk,
    private_jwk_from_secret,
    same_public_key,
)
from .parse import ALLOWED_JWS_ALGS, PROOF_TYPES, X402_PROOF_TYPES, parse_artifact

__all__ = [
    "ALLOWED_JWS_ALGS",
    "OFFER_DOMAIN_SEPARATOR",
    "OFFER_TYPEHASH",
    "PROOF_TYPES",
    "RECEIPT_DOMAIN_SEPARATOR",
    "RECEIPT_TYPEHASH",
    "X402_PROOF_TYPES",
    "alg_for_jwk",
    "canonical_json",
    "check_binding",
    "check_offer_not_expired",
    "evm_address",
    "generate_evm_private_key",
    "generate_private_jwk",
    "jwk_to_public_jwk",
    "offer_digest",
    "offer_expired",
    "offer_to_wire",
    "parse_artifact",
    "private_jwk_from_secret",
    "proof_wrapper",
    "receipt_digest",
    "receipt_to_wire",
    "recover_eip712_signer",
    "same_public_key",
    "sign_jws",
    "sign_offer_eip712",
    "sign_offer_jws",
    "sign_receipt_eip712",
    "sign_receipt_jws",
    "verify_jws",
]
