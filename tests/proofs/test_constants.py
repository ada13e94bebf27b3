"""The EIP-712 constants against PROTOCOLS.md §1 (independently checked values) and eth-account's own hashing."""

from __future__ import annotations

from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak

from service.proofs import OFFER_DOMAIN_SEPARATOR, OFFER_TYPEHASH, RECEIPT_DOMAIN_SEPARATOR, RECEIPT_TYPEHASH
from tests.proofs.make_assets import OFFER, RECEIPT, typed_data

# PROTOCOLS.md §1 "(checked)"
OFFER_TYPEHASH_HEX = "85143d3249b5e62ed5edd3d59a352d4e1181c775ff4f762f9c8a617f6bf1e97d"
RECEIPT_TYPEHASH_HEX = "616944bc4bb51b3d5fcbba8c559f76d57a93ac1e0d6659f1abbe95f92300c06f"
OFFER_DOMAIN_HEX = "5dc92544087ab60aa57c539b9543f9282416b0dcf2c2ae0d4d0051052a9e61b6"
RECEIPT_DOMAIN_HEX = "fd7f8c81cdd24b25c99ba22e191cee41d8809abbc12e8fdbd42fddfa5bb9e406"


def test_type_hashes() -> None:
    assert OFFER_TYPEHASH.hex() == OFFER_TYPEHASH_HEX
    assert RECEIPT_TYPEHASH.hex() == RECEIPT_TYPEHASH_HEX


def test_domain_separators() -> None:
    assert OFFER_DOMAIN_SEPARATOR.hex() == OFFER_DOMAIN_HEX
    assert RECEIPT_DOMAIN_SEPARATOR.hex() == RECEIPT_DOMAIN_HEX


def test_eth_account_agrees_on_domain_separators() -> None:
    # SignableMessage.header is the domain separator in eth-account's EIP-712 encoding.
    assert encode_typed_data(full_message=typed_data("offer", OFFER)).header.hex() == OFFER_DOMAIN_HEX
    assert encode_typed_data(full_message=typed_data("receipt", RECEIPT)).header.hex() == RECEIPT_DOMAIN_HEX


def test_type_strings_hash_to_constants() -> None:
    offer_type = (
        b"Offer(uint256 version,string resourceUrl,string scheme,string network,string asset,string payTo,"
        b"string amount,uint256 validUntil)"
    )
    receipt_type = (
        b"Receipt(uint256 version,string network,string resourceUrl,string payer,uint256 issuedAt,string transaction)"
    )
    assert keccak(offer_type).hex() == OFFER_TYPEHASH_HEX
    assert keccak(receipt_type).hex() == RECEIPT_TYPEHASH_HEX
