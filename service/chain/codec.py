"""ABI encoding of the OMATrust User Review (the exact EAS schema string), schema UIDs and recipients."""

from __future__ import annotations

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError, EncodingError
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from service.dids import did_address, did_address_candidates
from service.domain import USER_REVIEW_SCHEMA, Reason, Review
from service.errors import MalformedInput

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_BYTES32 = "0x" + "00" * 32


def schema_types(schema: str) -> list[str]:
    """``"string subject, uint256 x"`` → ``["string", "uint256"]`` (the ABI types, names dropped)."""
    return [field.strip().split(" ")[0] for field in schema.split(",")]


# Derived from the schema string itself, so a change there cannot silently desynchronize the codec.
_REVIEW_TYPES = schema_types(USER_REVIEW_SCHEMA)
if _REVIEW_TYPES != ["string", "string", "uint256", "string", "string[]", "string[]"]:  # pragma: no cover
    raise RuntimeError(f"unexpected User Review schema types: {_REVIEW_TYPES}")


def schema_uid(schema: str, resolver: str = ZERO_ADDRESS, revocable: bool = False) -> str:
    """EAS schema UID: ``keccak256(abi.encodePacked(schema, resolver, revocable))`` as 0x-hex."""
    packed = schema.encode("utf-8") + bytes.fromhex(resolver.removeprefix("0x")) + bytes([1 if revocable else 0])
    return "0x" + keccak(packed).hex()


def encode_review(*, review: Review) -> bytes:
    """ABI-encode a review exactly as the EAS SDK's ``SchemaEncoder`` does for the User Review schema.

    Raises:
        MalformedInput(ATTESTATION_DATA_INVALID): a field cannot be ABI-encoded (e.g. a negative rating).
    """
    try:
        return encode(
            _REVIEW_TYPES,
            [
                review.subject,
                review.version,
                review.rating_value,
                review.review_body,
                list(review.screenshot_urls),
                list(review.proofs),
            ],
        )
    except (EncodingError, TypeError, ValueError, OverflowError) as exc:
        raise MalformedInput(Reason.ATTESTATION_DATA_INVALID, f"cannot encode review: {exc}") from exc


def decode_review(*, data: bytes) -> Review:
    """Decode attestation ``data`` under the User Review schema. Decodes faithfully; does not validate field rules.

    Raises:
        MalformedInput(ATTESTATION_DATA_INVALID): not a valid ABI encoding of the schema (short, bad offsets,
            dirty padding, invalid UTF-8).
    """
    try:
        subject, version, rating, body, screenshots, proofs = decode(_REVIEW_TYPES, bytes(data))
    except (DecodingError, ValueError, UnicodeDecodeError, OverflowError, TypeError) as exc:
        raise MalformedInput(Reason.ATTESTATION_DATA_INVALID, f"not a User Review encoding: {exc}") from exc
    return Review(
        subject=subject,
        version=version,
        rating_value=int(rating),
        review_body=body,
        screenshot_urls=tuple(screenshots),
        proofs=tuple(proofs),
    )


def review_recipient(*, subject: str) -> str:
    """The EAS ``recipient`` to write for a subject: its DID Address, checksummed."""
    return to_checksum_address(did_address(subject))


def recipient_matches(*, subject: str, recipient: str) -> bool:
    """True when an on-chain ``recipient`` is a DID Address of ``subject`` (current or pre-``www.``-rule form)."""
    return recipient.lower() in did_address_candidates(subject)
