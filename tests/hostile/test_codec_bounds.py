"""The review decoder refuses every non-canonical layout before it builds any value (no aliasing blow-up)."""

from __future__ import annotations

import tracemalloc

import pytest
from eth_abi.abi import decode, encode

from service.chain.codec import MAX_ARRAY_ELEMENTS, MAX_DATA_BYTES, decode_review, encode_review
from service.domain import Reason, Review
from service.errors import MalformedInput
from tests.hostile.payloads import aliased_review_data

TYPES = ["string", "string", "uint256", "string", "string[]", "string[]"]


def review(**changes: object) -> Review:
    fields: dict[str, object] = {"subject": "did:web:example.com", "version": "1.0", "rating_value": 4,
                                 "review_body": "fine", "screenshot_urls": ("https://x/1.png",),
                                 "proofs": ('{"a":1}', '{"b":2}')}  # fmt: skip
    fields.update(changes)
    return Review(**fields)  # type: ignore[arg-type]


def refused(data: bytes) -> str:
    with pytest.raises(MalformedInput) as info:
        decode_review(data=data)
    assert info.value.reason is Reason.ATTESTATION_DATA_INVALID
    return info.value.detail


def test_canonical_data_decodes() -> None:
    r = review()
    assert decode_review(data=encode_review(review=r)) == r


def test_aliased_offsets_are_refused_before_expansion() -> None:
    data = aliased_review_data(shared_bytes=48 * 1024, pointers=1450)
    # what a permissive decoder does with it: ~70 MB of strings out of ~95 KB
    naive = decode(TYPES, data)
    assert sum(len(p) for p in naive[5]) >= 1450 * 48 * 1024
    del naive
    tracemalloc.start()
    try:
        detail = refused(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "elements" in detail
    assert peak < 4 * len(data)  # nothing proportional to the aliased size was built
    # under the element budget, the aliasing itself is what is refused
    assert "offset" in refused(aliased_review_data(shared_bytes=48 * 1024, pointers=MAX_ARRAY_ELEMENTS))


def test_out_of_order_tails_are_refused() -> None:
    data = bytearray(encode_review(review=review(subject="did:web:a.example", version="2")))
    # swap the subject and version offsets: both still point at valid strings, in the wrong order
    data[0:32], data[32:64] = data[32:64], data[0:32]
    refused(bytes(data))


def test_gap_and_trailing_bytes_are_refused() -> None:
    data = encode_review(review=review())
    refused(data + b"\x00" * 32)
    gapped = bytearray(data[:32 * 6]) + b"\x00" * 32 + data[32 * 6:]
    for i in (0, 1, 3, 4, 5):  # shift every tail offset past an unused word
        off = int.from_bytes(gapped[i * 32:(i + 1) * 32], "big") + 32
        gapped[i * 32:(i + 1) * 32] = off.to_bytes(32, "big")
    assert decode(TYPES, bytes(gapped))[0] == "did:web:example.com"  # a lenient decoder accepts it
    refused(bytes(gapped))


def test_dirty_padding_is_refused() -> None:
    data = bytearray(encode_review(review=review(subject="did:web:x")))
    data[6 * 32 + 32 + len("did:web:x")] = 1
    refused(bytes(data))


def test_nul_in_any_string_is_refused() -> None:
    for changes in ({"subject": "did:web:a\x00b"}, {"review_body": "x\x00"}, {"proofs": ("\x00",)}):
        assert "NUL" in refused(encode_review(review=review(**changes)))


def test_element_and_byte_budgets() -> None:
    many = review(proofs=tuple("p" for _ in range(MAX_ARRAY_ELEMENTS + 1)))
    assert "elements" in refused(encode_review(review=many))
    assert decode_review(data=encode_review(review=review(proofs=("p",) * MAX_ARRAY_ELEMENTS)))
    huge = encode(TYPES, ["did:web:x", "", 5, "a" * MAX_DATA_BYTES, [], []])
    assert "larger" in refused(huge)


def test_huge_length_word_is_refused_without_allocating() -> None:
    data = bytearray(encode_review(review=review()))
    data[6 * 32:7 * 32] = (2**255).to_bytes(32, "big")  # subject length
    refused(bytes(data))


def test_decode_canonical_serves_other_schemas() -> None:
    from service.chain.codec import decode_canonical

    types = ["string", "string", "string[]", "uint256"]
    values = ("did:web:a.example", "key-1", ("p1", "p2"), 7)
    data = encode(types, [values[0], values[1], list(values[2]), values[3]])
    assert decode_canonical(types=types, data=data) == values
    aliased = bytearray(data)
    # point the second element offset of the array back at the first element
    array_start = int.from_bytes(data[64:96], "big") + 32
    aliased[array_start + 32 : array_start + 64] = aliased[array_start : array_start + 32]
    assert decode(types, bytes(aliased))[2] == ("p1", "p1")  # a lenient decoder accepts it
    with pytest.raises(MalformedInput):
        decode_canonical(types=types, data=bytes(aliased))
    with pytest.raises(ValueError, match="does not handle"):
        decode_canonical(types=["bytes"], data=b"")
