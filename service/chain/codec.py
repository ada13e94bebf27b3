"""ABI encoding of the OMATrust User Review (the exact EAS schema string), schema UIDs and recipients."""

from __future__ import annotations

from typing import cast

from eth_abi.abi import encode
from eth_abi.exceptions import EncodingError
from eth_utils.crypto import keccak

from service.chain.addresses import checksum_cached
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
        raise MalformedInput(Reason.ATTESTATION_DATA_INVALID, f"cannot encode review ({type(exc).__name__})") from exc


# Decoding budgets. A canonical encoding lays every value out once, in order, so what is decoded is never larger
# than the input; these caps bound the work on top of that (the schema rules allow 10 screenshots and 8 proofs).
MAX_DATA_BYTES = 512 * 1024
MAX_ARRAY_ELEMENTS = 64
_WORD = 32


def decode_review(*, data: bytes) -> Review:
    """Decode attestation ``data`` under the User Review schema. Decodes faithfully; does not validate field rules.

    The bytes must be the *canonical* encoding (what ``encode_review`` writes): every offset points exactly where
    the previous value ended — no overlapping, aliased or out-of-order tails, no gaps, no trailing bytes — padding is
    zero, strings are UTF-8 without NUL, arrays hold at most ``MAX_ARRAY_ELEMENTS``. All of this is checked while
    walking the bytes, before any value is built, so a few KiB cannot expand into gigabytes (one string referenced
    by a thousand offsets); the result is then re-encoded and must equal the input.

    Raises:
        MalformedInput(ATTESTATION_DATA_INVALID): not the canonical ABI encoding of the schema, over a budget, or a
            string holding NUL (no database can store it).
    """
    values = decode_canonical(types=_REVIEW_TYPES, data=data)  # typed by _REVIEW_TYPES
    review = Review(subject=cast(str, values[0]), version=cast(str, values[1]), rating_value=cast(int, values[2]),
                    review_body=cast(str, values[3]), screenshot_urls=cast(tuple[str, ...], values[4]),
                    proofs=cast(tuple[str, ...], values[5]))  # fmt: skip
    if _encode_raw(review) != bytes(data):  # belt and braces: the walk above should make this impossible
        raise MalformedInput(Reason.ATTESTATION_DATA_INVALID, "data is not the canonical encoding")
    return review


CANONICAL_TYPES = frozenset({"string", "string[]", "uint256"})


def decode_canonical(*, types: list[str], data: bytes) -> tuple[object, ...]:
    """Decode ABI ``data`` of a tuple of ``types`` (each ``string``, ``string[]`` or ``uint256``), accepting only
    the canonical encoding, with every check made before a value is built (see ``decode_review``). The schema
    codecs of every OMATrust attestation can share it.

    Raises:
        MalformedInput(ATTESTATION_DATA_INVALID): not the canonical encoding, over a budget, or a string with NUL.
        ValueError: a type this decoder does not handle (a programming error, not bad data).
    """
    unknown = set(types) - CANONICAL_TYPES
    if unknown:
        raise ValueError(f"decode_canonical does not handle {sorted(unknown)}")
    data = bytes(data)
    if len(data) > MAX_DATA_BYTES:
        raise MalformedInput(Reason.ATTESTATION_DATA_INVALID, f"data is larger than {MAX_DATA_BYTES} bytes")
    reader = _CanonicalReader(data)
    heads = [reader.word(i * _WORD) for i in range(len(types))]
    reader.pos = len(types) * _WORD
    values: list[object] = []
    for abi_type, head in zip(types, heads, strict=True):
        if abi_type == "uint256":
            values.append(head)
            continue
        reader.expect_offset(head, base=0)
        values.append(reader.string() if abi_type == "string" else reader.string_array())
    if reader.pos != len(data):
        raise MalformedInput(Reason.ATTESTATION_DATA_INVALID, "trailing bytes after the encoding")
    return tuple(values)


def _encode_raw(review: Review) -> bytes | None:
    try:
        return encode_review(review=review)
    except MalformedInput:
        return None


class _CanonicalReader:
    """Walks ABI bytes front to back; every value must start exactly where the previous one ended."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _fail(self, why: str) -> MalformedInput:
        return MalformedInput(Reason.ATTESTATION_DATA_INVALID, f"not a canonical ABI encoding: {why}")

    def word(self, at: int) -> int:
        if at + _WORD > len(self.data):
            raise self._fail("short data")
        return int.from_bytes(self.data[at : at + _WORD], "big")

    def expect_offset(self, offset: int, *, base: int) -> None:
        if base + offset != self.pos:
            raise self._fail("an offset does not point right after the previous value")

    def string(self) -> str:
        length = self.word(self.pos)
        start = self.pos + _WORD
        padded = -(-length // _WORD) * _WORD if length <= len(self.data) else len(self.data) + 1
        if start + padded > len(self.data):
            raise self._fail("a string runs past the end")
        raw = self.data[start : start + length]
        if any(self.data[start + length : start + padded]):
            raise self._fail("dirty padding")
        self.pos = start + padded
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail("a string is not UTF-8") from None
        if "\x00" in text:
            raise self._fail("a string holds NUL")
        return text

    def string_array(self) -> tuple[str, ...]:
        count = self.word(self.pos)
        if count > MAX_ARRAY_ELEMENTS:
            raise self._fail(f"an array has more than {MAX_ARRAY_ELEMENTS} elements")
        base = self.pos + _WORD
        offsets = [self.word(base + i * _WORD) for i in range(count)]
        self.pos = base + count * _WORD
        items: list[str] = []
        for offset in offsets:
            self.expect_offset(offset, base=base)
            items.append(self.string())
        return tuple(items)


def review_recipient(*, subject: str) -> str:
    """The EAS ``recipient`` to write for a subject: its DID Address, checksummed."""
    return checksum_cached(did_address(subject))


def recipient_matches(*, subject: str, recipient: str) -> bool:
    """True when an on-chain ``recipient`` is a DID Address of ``subject`` (current or pre-``www.``-rule form)."""
    return recipient.lower() in did_address_candidates(subject)
