"""User Review ABI codec, schema UID and DID Address vectors (references: PROTOCOLS.md constants, the
SchemaRegistry contract itself, eth_abi's own decoder for hand-built edge cases, viem in tests/test_viem)."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from hypothesis import given, settings
from hypothesis import strategies as st

from service.chain.codec import (
    ZERO_ADDRESS,
    decode_review,
    encode_review,
    recipient_matches,
    review_recipient,
    schema_types,
    schema_uid,
)
from service.chain.embedded import EmbeddedChain
from service.domain import USER_REVIEW_SCHEMA, USER_REVIEW_SCHEMA_UID, Reason, Review
from service.errors import MalformedInput

from .helpers import make_review

# PROTOCOLS.md §3 (checked there independently)
SCHEMA_UID = "0x7ab3911527e5e47eaab9f5a2c571060026532dde8cb4398185553053963b2a47"
API_EXAMPLE_DID_ADDRESS = "0x09a34a416806a7eba14b6b183369082602e8064b"


def test_schema_uid_matches_protocol_constant() -> None:
    assert schema_uid(USER_REVIEW_SCHEMA, ZERO_ADDRESS, False) == SCHEMA_UID == USER_REVIEW_SCHEMA_UID
    assert schema_uid(USER_REVIEW_SCHEMA, ZERO_ADDRESS, True) != SCHEMA_UID  # revocable is part of the UID


def test_schema_uid_matches_what_the_registry_stored(chain: EmbeddedChain) -> None:
    from service.chain.deploy import registry_contract

    record = registry_contract(w3=chain.w3, address=chain.schema_registry_address).functions.getSchema(
        SCHEMA_UID
    ).call()
    assert "0x" + bytes(record[0]).hex() == SCHEMA_UID
    assert record[1] == ZERO_ADDRESS
    assert record[2] is False
    assert record[3] == USER_REVIEW_SCHEMA


def test_did_address_vector() -> None:
    assert review_recipient(subject="did:web:api.example.com").lower() == API_EXAMPLE_DID_ADDRESS
    # normalization: host case, trailing dot, leading www. (current rule) all give the same recipient
    for variant in ("did:web:API.Example.com", "did:web:api.example.com.", "did:web:www.api.example.com"):
        assert review_recipient(subject=variant).lower() == API_EXAMPLE_DID_ADDRESS
    # reading accepts the pre-www-rule address too
    from service.dids import did_address

    old = did_address("did:web:www.api.example.com", strip_www=False)
    assert old != API_EXAMPLE_DID_ADDRESS
    assert recipient_matches(subject="did:web:www.api.example.com", recipient=old)
    assert not recipient_matches(subject="did:web:other.example.com", recipient=API_EXAMPLE_DID_ADDRESS)


def test_schema_types_from_the_schema_string() -> None:
    assert schema_types(USER_REVIEW_SCHEMA) == ["string", "string", "uint256", "string", "string[]", "string[]"]


def test_encoding_is_plain_abi_of_the_schema_tuple() -> None:
    review = make_review(3)
    expected = encode(
        ["string", "string", "uint256", "string", "string[]", "string[]"],
        [review.subject, review.version, review.rating_value, review.review_body, [], list(review.proofs)],
    )
    assert encode_review(review=review) == expected


chars = st.characters(codec="utf-8", exclude_characters="\x00")  # NUL is refused by decode (no database stores it)
text = st.text(chars, max_size=80)
reviews = st.builds(
    Review,
    subject=text,
    version=text,
    rating_value=st.integers(min_value=0, max_value=2**256 - 1),
    review_body=st.text(chars, max_size=600),
    screenshot_urls=st.lists(text, max_size=4).map(tuple),
    proofs=st.lists(st.text(chars, max_size=300), max_size=3).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(reviews)
def test_round_trip(review: Review) -> None:
    assert decode_review(data=encode_review(review=review)) == review


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_never_crashes(data: bytes) -> None:
    """Random bytes either decode (then they re-encode to the same review) or are ATTESTATION_DATA_INVALID."""
    reason = None
    try:
        review = decode_review(data=data)
    except MalformedInput as exc:
        reason = exc.reason
    else:
        assert decode_review(data=encode_review(review=review)) == review
    assert reason in (None, Reason.ATTESTATION_DATA_INVALID)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 31,
        encode_review(review=make_review())[:-40],  # truncated
        encode(["string"], ["only one field"]),
        # invalid UTF-8 in the subject
        encode(["bytes", "string", "uint256", "string", "string[]", "string[]"], [b"\xff\xfe", "", 5, "", [], []]),
    ],
    ids=["empty", "short", "truncated", "wrong-shape", "bad-utf8"],
)
def test_bad_encodings_are_attestation_data_invalid(data: bytes) -> None:
    with pytest.raises(MalformedInput) as info:
        decode_review(data=data)
    assert info.value.reason is Reason.ATTESTATION_DATA_INVALID


def test_negative_rating_cannot_be_encoded() -> None:
    review = make_review()
    bad = Review(review.subject, review.version, -1, review.review_body, (), ())
    with pytest.raises(MalformedInput) as info:
        encode_review(review=bad)
    assert info.value.reason is Reason.ATTESTATION_DATA_INVALID
