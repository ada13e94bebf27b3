"""Pure DID document parsing and kid look-up."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from eth_account import Account

from service.domain import Reason
from service.errors import CheckFailed, CouldNotCheck, MalformedInput, Unsupported
from service.identity.documents import find_key, parse_did_document, read_did_document
from tests.identity.keyfactory import CURVES, b58encode, make_key

DID = "did:web:api.example.com"


def _raw(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def _doc(*methods: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"@context": ["https://www.w3.org/ns/did/v1"], "id": DID, "verificationMethod": list(methods), **extra}


@pytest.mark.parametrize("crv", CURVES)
def test_jwk_methods_with_absolute_and_relative_ids(crv: str) -> None:
    a, b = make_key(crv), make_key(crv)
    raw = _raw(
        _doc(
            {"id": f"{DID}#abs", "type": "JsonWebKey2020", "controller": DID, "publicKeyJwk": {**a.jwk, "kid": "x"}},
            {"id": "#rel", "type": "JsonWebKey2020", "controller": DID, "publicKeyJwk": b.jwk},
        )
    )
    document = parse_did_document(did=DID, raw=raw)
    assert [(k.id, k.jwk) for k in document.keys] == [(f"{DID}#abs", a.jwk), (f"{DID}#rel", b.jwk)]
    assert all(k.controller == DID and k.address is None for k in document.keys)
    assert document.snapshot_hash == hashlib.sha256(raw).hexdigest()
    assert document.raw == raw


@pytest.mark.parametrize("crv", CURVES)
def test_multibase_methods(crv: str) -> None:
    key = make_key(crv)
    raw = _raw(_doc({"id": "#mb", "type": "Multikey", "controller": DID, "publicKeyMultibase": key.multibase}))
    (resolved,) = parse_did_document(did=DID, raw=raw).keys
    assert resolved.jwk == key.jwk


def test_older_ed25519_raw_forms() -> None:
    key = make_key("Ed25519")
    raw = _raw(
        _doc(
            {
                "id": "#k2020",
                "type": "Ed25519VerificationKey2020",
                "publicKeyMultibase": "z" + b58encode(key.public_bytes),
            },
            {"id": "#k2018", "type": "Ed25519VerificationKey2018", "publicKeyBase58": b58encode(key.public_bytes)},
            {"id": "#k2020mc", "type": "Ed25519VerificationKey2020", "publicKeyMultibase": key.multibase},
        )
    )
    keys = parse_did_document(did=DID, raw=raw).keys
    assert [k.jwk for k in keys] == [key.jwk] * 3


def test_blockchain_account_ids() -> None:
    account = Account.create()
    checksummed = account.address  # mixed case, as documents usually carry it
    raw = _raw(
        _doc(
            {
                "id": "#evm",
                "type": "EcdsaSecp256k1RecoveryMethod2020",
                "blockchainAccountId": f"eip155:8453:{checksummed}",
            },
            {"id": "#eth", "type": "EcdsaSecp256k1RecoveryMethod2020", "ethereumAddress": checksummed},
            {
                "id": "#sol",
                "type": "SolanaMethod2021",
                "blockchainAccountId": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:6Yq",
            },
        )
    )
    parsed = read_did_document(did=DID, raw=raw)
    assert [(k.id, k.address, k.jwk) for k in parsed.document.keys] == [
        (f"{DID}#evm", checksummed.lower(), None),
        (f"{DID}#eth", checksummed.lower(), None),
    ]
    assert parsed.skipped[f"{DID}#sol"][0] is Reason.UNSUPPORTED_KEY_TYPE


def test_method_with_jwk_and_account_gives_two_entries_and_jwk_wins_for_kid() -> None:
    key = make_key("secp256k1")
    method = {"id": "#k", "type": "EcdsaSecp256k1VerificationKey2019", "publicKeyJwk": key.jwk,
              "blockchainAccountId": "eip155:1:0x" + "Ab" * 20}  # fmt: skip
    parsed = read_did_document(did=DID, raw=_raw(_doc(method)))
    assert [(k.jwk is not None, k.address) for k in parsed.document.keys] == [(True, None), (False, "0x" + "ab" * 20)]
    assert find_key(parsed=parsed, kid=f"{DID}#k").jwk == key.jwk


def test_assertion_method_refs_and_embedded_methods() -> None:
    a, b, c = make_key("P-256"), make_key("Ed25519"), make_key("secp256k1")
    raw = _raw(
        _doc(
            {"id": "#a", "type": "JsonWebKey2020", "publicKeyJwk": a.jwk},
            {"id": f"{DID}#b", "type": "JsonWebKey2020", "publicKeyJwk": b.jwk},
            assertionMethod=["#b", f"{DID}#a", {"id": "#c", "type": "JsonWebKey2020", "publicKeyJwk": c.jwk}],
        )
    )
    document = parse_did_document(did=DID, raw=raw)
    assert document.assertion_method == (f"{DID}#b", f"{DID}#a", f"{DID}#c")
    assert {k.id: k.jwk for k in document.keys} == {f"{DID}#a": a.jwk, f"{DID}#b": b.jwk, f"{DID}#c": c.jwk}


def test_id_mismatch() -> None:
    for other in ("did:web:evil.example.com", "did:web:api.example.com:user", "did:web:API.example.com"):
        with pytest.raises(MalformedInput) as info:
            parse_did_document(did=DID, raw=_raw({"id": other}))
        assert info.value.reason is Reason.DID_DOCUMENT_ID_MISMATCH


@pytest.mark.parametrize(
    "raw",
    [
        b"<html>not json</html>",
        b"\xff\xfe{}",
        b"[]",
        b'{"verificationMethod": []}',
        b'{"id": 5}',
        _raw(_doc(verificationMethod={"id": "#a"})),
        _raw(_doc("not-an-object")),  # type: ignore[arg-type]
        _raw(_doc({"type": "JsonWebKey2020"})),  # method without id
        _raw(_doc({"id": "#a", "type": "X"}, {"id": f"{DID}#a", "type": "Y"})),  # duplicate id (relative = absolute)
        _raw(_doc(assertionMethod="#a")),
        _raw(_doc(assertionMethod=["key-1"])),  # not a DID URL
    ],
)
def test_malformed_documents_are_checked_and_bad(raw: bytes) -> None:
    with pytest.raises(MalformedInput) as info:
        parse_did_document(did=DID, raw=raw)
    assert info.value.reason is Reason.DID_DOCUMENT_INVALID
    assert isinstance(info.value, CheckFailed)
    assert not isinstance(info.value, CouldNotCheck)


def test_unusable_methods_are_skipped_with_a_reason() -> None:
    good, leaked = make_key("P-256"), make_key("P-256")
    off_curve = {**good.jwk, "y": good.jwk["x"]}
    raw = _raw(
        _doc(
            {"id": "#rsa", "type": "JsonWebKey2020", "publicKeyJwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}},
            {"id": "#weird", "type": "SomeFutureKey2030", "publicKeyWhatever": "zzz"},
            {"id": "#leaked", "type": "JsonWebKey2020", "publicKeyJwk": leaked.private_jwk},
            {"id": "#offcurve", "type": "JsonWebKey2020", "publicKeyJwk": off_curve},
            {"id": "#x25519", "type": "Multikey", "publicKeyMultibase": "z" + b58encode(b"\xec\x01" + b"\x07" * 32)},
            {"id": "#good", "type": "JsonWebKey2020", "publicKeyJwk": good.jwk},
        )
    )
    parsed = read_did_document(did=DID, raw=raw)
    assert [k.id for k in parsed.document.keys] == [f"{DID}#good"]
    expectations = {
        "rsa": (Unsupported, Reason.UNSUPPORTED_KEY_TYPE),
        "weird": (Unsupported, Reason.UNSUPPORTED_KEY_TYPE),
        "x25519": (Unsupported, Reason.UNSUPPORTED_KEY_TYPE),
        # a published private key is never usable (dropping 'd' would accept a compromised key)
        "leaked": (MalformedInput, Reason.DID_DOCUMENT_INVALID),
        "offcurve": (MalformedInput, Reason.DID_DOCUMENT_INVALID),
    }
    for fragment, (error, reason) in expectations.items():
        with pytest.raises(error) as info:
            find_key(parsed=parsed, kid=f"{DID}#{fragment}")
        assert info.value.reason is reason
    assert find_key(parsed=parsed, kid=f"{DID}#good").jwk == good.jwk


def test_kid_without_fragment() -> None:
    a, b = make_key("P-256"), make_key("P-256")
    one = read_did_document(did=DID, raw=_raw(_doc({"id": "#only", "type": "JsonWebKey2020", "publicKeyJwk": a.jwk})))
    assert find_key(parsed=one, kid=DID).jwk == a.jwk

    methods = [{"id": "#a", "type": "JsonWebKey2020", "publicKeyJwk": a.jwk},
               {"id": "#b", "type": "JsonWebKey2020", "publicKeyJwk": b.jwk}]  # fmt: skip
    several = read_did_document(did=DID, raw=_raw(_doc(*methods)))
    with pytest.raises(CheckFailed) as info:
        find_key(parsed=several, kid=DID)
    assert info.value.reason is Reason.KEY_NOT_FOUND

    with_assertion = read_did_document(did=DID, raw=_raw(_doc(*methods, assertionMethod=["#b"])))
    assert find_key(parsed=with_assertion, kid=DID).jwk == b.jwk


def test_unknown_fragment_is_key_not_found() -> None:
    a = make_key("Ed25519")
    parsed = read_did_document(did=DID, raw=_raw(_doc({"id": "#a", "type": "JsonWebKey2020", "publicKeyJwk": a.jwk})))
    for kid in (f"{DID}#b", f"{DID}#A", "did:web:other.example.com#a"):
        with pytest.raises(CheckFailed) as info:
            find_key(parsed=parsed, kid=kid)
        assert info.value.reason is Reason.KEY_NOT_FOUND


def test_document_without_methods_is_valid_but_has_no_keys() -> None:
    document = parse_did_document(did=DID, raw=_raw({"id": DID}))
    assert document.keys == ()
    assert document.assertion_method == ()
