"""EIP-712 delegated-attest typed data: typeHash, digest and signer recovery against eth-account and the contract."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from service.chain.delegation import (
    ATTEST_TYPEHASH,
    DelegatedRequest,
    EasDomain,
    attest_digest,
    attest_typed_data,
    normalize_signature,
    recover_signer,
)
from service.chain.eas_relayer import EasClient
from service.domain import USER_REVIEW_SCHEMA_UID, Reason
from service.errors import MalformedInput

# PROTOCOLS.md §4 (checked there)
ATTEST_TYPEHASH_HEX = "feb2925a02bae3dae48d424a0437a2b6ac939aa9230ddc55a1a76f065d988076"
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

DOMAIN = EasDomain(name="EAS", version="1.3.0", chain_id=8453,
                   verifying_contract="0x4200000000000000000000000000000000000021")
REVIEWER = Account.from_key(b"\x11" * 32)
RECIPIENT = "0x09A34a416806a7eba14B6B183369082602E8064B"


def _typed(nonce: int = 7, data: bytes = b"\x01\x02review") -> dict:
    return attest_typed_data(domain=DOMAIN, attester=REVIEWER.address, recipient=RECIPIENT, data=data,
                             nonce=nonce, deadline=1_900_000_000, schema_uid=USER_REVIEW_SCHEMA_UID)


def _eth_account_digest(typed: dict) -> bytes:
    signable = encode_typed_data(full_message=typed)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def test_typehash_matches_protocol_and_contract(client: EasClient) -> None:
    assert ATTEST_TYPEHASH.hex() == ATTEST_TYPEHASH_HEX
    assert bytes(client._contract.functions.getAttestTypeHash().call()).hex() == ATTEST_TYPEHASH_HEX


def test_digest_matches_eth_account() -> None:
    for nonce, data in ((0, b""), (7, b"\x01\x02review"), (2**200, bytes(range(256)) * 3)):
        typed = _typed(nonce, data)
        assert attest_digest(domain=DOMAIN, attester=REVIEWER.address, recipient=RECIPIENT, data=data,
                             nonce=nonce, deadline=1_900_000_000, schema_uid=USER_REVIEW_SCHEMA_UID) == \
            _eth_account_digest(typed)


def test_domain_separator_matches_eth_account() -> None:
    signable = encode_typed_data(full_message=_typed())
    assert signable.header == DOMAIN.separator()


def test_typed_data_is_complete_v4_json() -> None:
    typed = _typed()
    assert typed["primaryType"] == "Attest"
    assert [f["name"] for f in typed["types"]["EIP712Domain"]] == ["name", "version", "chainId", "verifyingContract"]
    message = typed["message"]
    assert message["expirationTime"] == 0
    assert message["revocable"] is False
    assert message["value"] == 0
    assert message["refUID"] == "0x" + "00" * 32
    import json

    assert json.loads(json.dumps(typed)) == typed  # plain JSON


def test_recover_signer_matches_eth_account_signature() -> None:
    typed = _typed()
    signed = Account.sign_typed_data(REVIEWER.key, full_message=typed)
    digest = _eth_account_digest(typed)
    assert recover_signer(digest=digest, signature=bytes(signed.signature)) == REVIEWER.address
    assert Account._recover_hash(digest, signature=signed.signature) == REVIEWER.address


def test_signature_normalization_keeps_the_signer() -> None:
    typed = _typed()
    sig = bytes(Account.sign_typed_data(REVIEWER.key, full_message=typed).signature)
    digest = _eth_account_digest(typed)
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    high_s = r + (N - s).to_bytes(32, "big") + bytes([55 - v])  # the malleated twin
    zero_one_v = sig[:64] + bytes([v - 27])
    for variant in (high_s, zero_one_v, "0x" + sig.hex(), sig.hex().upper()):
        norm = normalize_signature(variant)
        assert norm == sig  # eth-account already emits low-s, v 27/28
        assert recover_signer(digest=digest, signature=norm) == REVIEWER.address


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (b"\x01" * 64, Reason.SIGNATURE_ENCODING),
        (b"\x01" * 64 + b"\x1d", Reason.SIGNATURE_BAD_V),
        (b"\x00" * 32 + b"\x01" * 32 + b"\x1b", Reason.SIGNATURE_ENCODING),
        ("0xzz", Reason.SIGNATURE_ENCODING),
    ],
    ids=["64-bytes", "v29", "r-zero", "not-hex"],
)
def test_bad_signatures(signature: bytes | str, reason: Reason) -> None:
    with pytest.raises(MalformedInput) as info:
        normalize_signature(signature)
    assert info.value.reason is reason


def test_content_key_ignores_signature_malleation_but_not_content() -> None:
    typed = _typed()
    sig = bytes(Account.sign_typed_data(REVIEWER.key, full_message=typed).signature)
    twin = sig[:32] + (N - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") + bytes([55 - sig[64]])

    def req(signature: bytes, nonce: int = 7) -> DelegatedRequest:
        return DelegatedRequest(attester=REVIEWER.address.lower(), data=b"\x01\x02review", recipient=RECIPIENT.lower(),
                                deadline=1_900_000_000, nonce=nonce, signature=signature)

    a, b = req(sig), req(twin)
    assert a == b  # normalized on construction
    assert a.attester == REVIEWER.address  # checksummed
    assert a.content_key(domain=DOMAIN) == "0x" + keccak(_eth_account_digest(typed)).hex()
    assert req(sig, nonce=8).content_key(domain=DOMAIN) != a.content_key(domain=DOMAIN)
    assert a.signer(domain=DOMAIN) == REVIEWER.address


def test_bad_request_fields() -> None:
    with pytest.raises(MalformedInput):
        DelegatedRequest(attester="0x12", data=b"", recipient=RECIPIENT, deadline=1, nonce=0, signature=b"\x01" * 65)
    with pytest.raises(MalformedInput):
        DelegatedRequest(attester=REVIEWER.address, data=b"", recipient=RECIPIENT, deadline=2**64, nonce=0,
                         signature=b"\x01" * 65)
