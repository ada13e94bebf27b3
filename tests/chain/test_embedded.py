"""The embedded chain: EAS at the Base predeploys with the right domain, and the delegated flow end to end."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from service.chain.codec import decode_review, encode_review
from service.chain.deploy import registry_contract
from service.chain.eas_relayer import EasClient
from service.chain.embedded import EAS_ADDRESS, SCHEMA_REGISTRY_ADDRESS, EmbeddedChain, start_embedded_chain
from service.dids import did_address
from service.domain import USER_REVIEW_SCHEMA, USER_REVIEW_SCHEMA_UID, Reason
from service.errors import ChainRejected

from .helpers import attested_count, make_review, relayer_state, sign_request


def test_startup_is_fast_and_chains_are_independent() -> None:
    start_embedded_chain()  # warm: runtime code is computed once per process
    started = time.perf_counter()
    a = start_embedded_chain()
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"embedded chain startup took {elapsed:.3f}s"
    b = start_embedded_chain(dev_accounts=1)
    assert a.ephemeral
    assert isinstance(a.lock, type(threading.RLock()))
    assert a.w3 is not b.w3
    assert len(b.dev_accounts) == 1
    reviewer = Account.create()
    request, _ = sign_request(a.client(), reviewer, make_review())
    a.client().submit(requests=[request])
    assert attested_count(a.client(), attester=reviewer.address) == 1
    assert attested_count(b.client(), attester=reviewer.address) == 0


def test_contracts_at_base_predeploys(chain: EmbeddedChain, client: EasClient) -> None:
    w3 = chain.w3
    assert chain.eas_address == EAS_ADDRESS == "0x4200000000000000000000000000000000000021"
    assert chain.schema_registry_address == SCHEMA_REGISTRY_ADDRESS
    eas = client._contract.functions
    assert eas.getSchemaRegistry().call() == SCHEMA_REGISTRY_ADDRESS
    assert eas.version().call() == "1.4.0"
    assert eas.getName().call() == "EAS"
    assert registry_contract(w3=w3, address=SCHEMA_REGISTRY_ADDRESS).functions.version().call() == "1.4.0"
    record = registry_contract(w3=w3, address=SCHEMA_REGISTRY_ADDRESS).functions.getSchema(
        USER_REVIEW_SCHEMA_UID).call()
    assert record[3] == USER_REVIEW_SCHEMA
    for account in (chain.relayer, *chain.dev_accounts):
        assert w3.eth.get_balance(account.address) > 10**21


def test_domain_separator_is_right_for_this_chain_and_address(client: EasClient) -> None:
    chain_id = client.w3.eth.chain_id
    assert client.chain_id == chain_id == 131277322940537
    typed = {"types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                        {"name": "chainId", "type": "uint256"},
                                        {"name": "verifyingContract", "type": "address"}],
                       "T": [{"name": "x", "type": "uint256"}]},
             "primaryType": "T", "message": {"x": 1},
             "domain": {"name": "EAS", "version": "1.4.0", "chainId": chain_id, "verifyingContract": EAS_ADDRESS}}
    reference = encode_typed_data(full_message=typed).header  # eth-account's domain separator
    assert bytes(client._contract.functions.getDomainSeparator().call()) == reference
    assert client.attestation_config() == {
        "chainId": chain_id,
        "eas": EAS_ADDRESS,
        "schemaUid": USER_REVIEW_SCHEMA_UID,
        "domain": {"name": "EAS", "version": "1.4.0", "chainId": chain_id, "verifyingContract": EAS_ADDRESS},
    }


def test_signed_typed_data_lands_with_reviewer_as_attester(client: EasClient) -> None:
    reviewer = Account.create()
    review = make_review(2)
    request, typed = sign_request(client, reviewer, review)
    assert typed["message"]["nonce"] == 0
    [landed] = client.submit(requests=[request])
    record = client.get_attestation(uid=landed.uid)
    assert record is not None
    assert record.attester == reviewer.address
    assert record.recipient.lower() == did_address(review.subject)
    assert record.schema == USER_REVIEW_SCHEMA_UID
    assert not record.revocable
    assert record.expiration_time == 0
    assert decode_review(data=record.data) == review
    assert client.get_nonce(attester=reviewer.address) == 1
    assert client.get_attestation(uid="0x" + "00" * 31 + "01") is None


def _refused_before_gas(client: EasClient, request, reason: Reason, *, now: int | None = None) -> None:
    before = relayer_state(client)
    with pytest.raises(ChainRejected) as info:
        client.submit(requests=[request], now=now)
    assert info.value.reason is reason, info.value
    assert relayer_state(client) == before  # no transaction, no gas


def test_tampered_expired_replayed_are_refused_before_gas(client: EasClient) -> None:
    reviewer, other = Account.create(), Account.create()
    review = make_review(1)
    request, _ = sign_request(client, reviewer, review)
    # tampered data (signature over the original: 1 star became 5) → recovers someone else
    tampered = replace(request, data=encode_review(review=replace(review, rating_value=5)))
    _refused_before_gas(client, tampered, Reason.DELEGATION_SIGNER_MISMATCH)
    # signed by another key
    forged, _ = sign_request(client, other, make_review(1))
    _refused_before_gas(client, replace(forged, attester=reviewer.address), Reason.DELEGATION_SIGNER_MISMATCH)
    # expired
    expired, _ = sign_request(client, reviewer, make_review(1), deadline=int(time.time()) - 1)
    _refused_before_gas(client, expired, Reason.DELEGATION_EXPIRED)
    # recipient that is not the subject's DID Address (signed as such: signature valid)
    # replayed: lands once, then the same signed request is refused (nonce used)
    client.submit(requests=[request])
    _refused_before_gas(client, request, Reason.DELEGATION_NONCE)
    assert attested_count(client, attester=reviewer.address) == 1


def test_wrong_recipient_and_garbage_data_are_refused(client: EasClient) -> None:
    reviewer = Account.create()
    review = make_review(1)
    request, _ = sign_request(client, reviewer, review)
    wrong = replace(request, recipient="0x" + "11" * 20)
    with pytest.raises(ChainRejected) as info:
        client.check_delegated(request=wrong, now=int(time.time()))
    assert info.value.reason is Reason.RECIPIENT_MISMATCH
    with pytest.raises(ChainRejected) as info:
        client.check_delegated(request=replace(request, data=b"\x00" * 10), now=int(time.time()))
    assert info.value.reason is Reason.ATTESTATION_DATA_INVALID


def test_eas_itself_rejects_what_we_refuse(client: EasClient) -> None:
    """Our pre-check mirrors the contract: a tampered request reverts with InvalidSignature when simulated."""
    reviewer = Account.create()
    review = make_review(1)
    request, _ = sign_request(client, reviewer, review)
    tampered = replace(request, data=encode_review(review=replace(review, rating_value=5)))
    data = client.calldata(requests=[tampered])
    with pytest.raises(ChainRejected) as info:
        client.call(data=data, gas=2_000_000)
    assert info.value.reason is Reason.SIGNATURE_INVALID
    assert info.value.detail == "InvalidSignature"
    expired, _ = sign_request(client, reviewer, make_review(1), deadline=1)
    with pytest.raises(ChainRejected) as info:
        client.call(data=client.calldata(requests=[expired]), gas=2_000_000)
    assert info.value.reason is Reason.DELEGATION_EXPIRED


def test_platform_attester_mode(client: EasClient, chain: EmbeddedChain) -> None:
    from service.chain.codec import review_recipient

    review = make_review(4)
    landed = client.attest_direct(data=encode_review(review=review), recipient=review_recipient(subject=review.subject))
    record = client.get_attestation(uid=landed.uid)
    assert record is not None
    assert record.attester == chain.relayer.address


def test_domain_version_is_derived_from_the_separator() -> None:
    """Base's EAS reports 1.4.x but signs with 1.3.0: the separator decides (unit level, stubbed contract reads;
    the 1.4.0 path runs against real contracts above and on anvil)."""
    from service.chain.delegation import EasDomain

    address = "0x4200000000000000000000000000000000000021"
    base_sep = EasDomain("EAS", "1.3.0", 8453, address).separator()

    class Call:
        def __init__(self, value: object) -> None:
            self.value = value

        def call(self) -> object:
            return self.value

    class Functions:
        def getDomainSeparator(self) -> Call:
            return Call(base_sep)

        def getName(self) -> Call:
            return Call("EAS")

        def version(self) -> Call:
            return Call("1.4.1")

    class FakeEth:
        chain_id = 8453

        def get_code(self, _address: str) -> bytes:
            return b"\x60"

        def contract(self, **_kwargs: object) -> object:
            return type("C", (), {"functions": Functions()})()

    client = EasClient(w3=type("W3", (), {"eth": FakeEth()})(), eas_address=address, relayer=None)  # type: ignore[arg-type]
    assert client.domain == EasDomain("EAS", "1.3.0", 8453, address)
