"""EIP-712 digests of x402 offers/receipts and signer recovery (the fast path, no web3 import).

The two struct types are fixed by the x402 spec and never sent on the wire, so their type hashes and domain
separators are computed once here; a digest is then a handful of keccaks over the fields *as transmitted*
(``payTo``/``payer``/``asset`` are EIP-712 ``string``s: never checksummed or lower-cased before hashing).

Signature acceptance mirrors the TS SDK (viem ``recoverTypedDataAddress``): ``0x`` + 130 hex digits (either case),
``v`` in {27, 28, 0, 1}, high-S accepted. Refused: 64-byte EIP-2098 compact signatures, a missing ``0x``, any other
length (viem's odd 129-digit quirk included), ``v`` = 29 and friends.
"""

from __future__ import annotations

import re

import coincurve

from service.domain import ArtifactFormat, OfferPayload, Reason, ReceiptPayload, SignedArtifact
from service.errors import SignatureInvalid

from .encoding import address_from_public_key
from .hashing import keccak256 as keccak

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId)"
OFFER_TYPE = (
    "Offer(uint256 version,string resourceUrl,string scheme,string network,string asset,string payTo,"
    "string amount,uint256 validUntil)"
)
RECEIPT_TYPE = (
    "Receipt(uint256 version,string network,string resourceUrl,string payer,uint256 issuedAt,string transaction)"
)
OFFER_DOMAIN_NAME = "x402 offer"
RECEIPT_DOMAIN_NAME = "x402 receipt"
DOMAIN_VERSION = "1"
DOMAIN_CHAIN_ID = 1  # always 1, whatever the payment network (the x402 offer/receipt domain fixes it)


def _u256(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _s(value: str) -> bytes:
    return keccak(value.encode("utf-8"))


def _domain_separator(name: str) -> bytes:
    return keccak(keccak(DOMAIN_TYPE.encode()) + _s(name) + _s(DOMAIN_VERSION) + _u256(DOMAIN_CHAIN_ID))


OFFER_TYPEHASH = keccak(OFFER_TYPE.encode())
RECEIPT_TYPEHASH = keccak(RECEIPT_TYPE.encode())
OFFER_DOMAIN_SEPARATOR = _domain_separator(OFFER_DOMAIN_NAME)
RECEIPT_DOMAIN_SEPARATOR = _domain_separator(RECEIPT_DOMAIN_NAME)

_OFFER_PREFIX = b"\x19\x01" + OFFER_DOMAIN_SEPARATOR
_RECEIPT_PREFIX = b"\x19\x01" + RECEIPT_DOMAIN_SEPARATOR


def offer_digest(payload: OfferPayload) -> bytes:
    """The 32-byte EIP-712 digest an offer signature covers."""
    struct = keccak(
        OFFER_TYPEHASH
        + _u256(payload.version)
        + _s(payload.resource_url)
        + _s(payload.scheme)
        + _s(payload.network)
        + _s(payload.asset)
        + _s(payload.pay_to)
        + _s(payload.amount)
        + _u256(payload.valid_until)
    )
    return keccak(_OFFER_PREFIX + struct)


def receipt_digest(payload: ReceiptPayload) -> bytes:
    """The 32-byte EIP-712 digest a receipt signature covers."""
    struct = keccak(
        RECEIPT_TYPEHASH
        + _u256(payload.version)
        + _s(payload.network)
        + _s(payload.resource_url)
        + _s(payload.payer)
        + _u256(payload.issued_at)
        + _s(payload.transaction)
    )
    return keccak(_RECEIPT_PREFIX + struct)


_HEX_RE = re.compile(r"^0x[0-9a-fA-F]*$")


def split_signature(signature: str) -> bytes:
    """``0x`` r‖s‖v hex → the 65 bytes coincurve wants (r‖s‖recid).

    Raises:
        SignatureInvalid: SIGNATURE_ENCODING (no ``0x``, not hex, wrong length), SIGNATURE_COMPACT (64 bytes,
            EIP-2098), SIGNATURE_BAD_V (v not in {27, 28, 0, 1}).
    """
    if not _HEX_RE.match(signature):
        raise SignatureInvalid(Reason.SIGNATURE_ENCODING, "EIP-712 signature must be 0x-prefixed hex")
    digits = len(signature) - 2
    if digits == 128:
        raise SignatureInvalid(Reason.SIGNATURE_COMPACT, "64-byte (EIP-2098) signatures are not accepted")
    if digits != 130:
        raise SignatureInvalid(Reason.SIGNATURE_ENCODING, f"signature must be 130 hex digits, got {digits}")
    raw = bytes.fromhex(signature[2:])
    v = raw[64]
    if v in (27, 28):
        v -= 27
    elif v not in (0, 1):
        raise SignatureInvalid(Reason.SIGNATURE_BAD_V, f"v={raw[64]} is not one of 27, 28, 0, 1")
    return raw[:64] + bytes((v,))


def recover_address(*, digest: bytes, signature: str) -> str:
    """Checksummed address that produced ``signature`` over ``digest``.

    Raises:
        SignatureInvalid: the encoding rules of :func:`split_signature`, or SIGNATURE_INVALID when no key can be
            recovered (r or s zero or ≥ the curve order, r not an x coordinate).
    """
    sig65 = split_signature(signature)
    try:
        public = coincurve.PublicKey.from_signature_and_message(sig65, digest, hasher=None)
    except Exception:  # coincurve raises plain Exception/ValueError for every unrecoverable case
        raise SignatureInvalid(Reason.SIGNATURE_INVALID, "no key recoverable from signature") from None
    return address_from_public_key(public.format(compressed=False))


def recover_eip712_signer(*, artifact: SignedArtifact) -> str:
    """Recover the checksummed address that signed an EIP-712 artifact.

    Recovery never "fails" on a tampered payload — it yields a different address; only comparing the result with
    an authorized signer (:func:`service.verdicts.authorize`) makes it meaningful.

    Raises:
        SignatureInvalid: not an EIP-712 artifact (UNSUPPORTED_FORMAT), the signature-form reasons of
            :func:`split_signature`, SIGNATURE_INVALID.
    """
    if artifact.format is not ArtifactFormat.EIP712:
        raise SignatureInvalid(Reason.UNSUPPORTED_FORMAT, "not an EIP-712 artifact")
    return recover_address(digest=artifact.signing_input, signature=artifact.signature)
