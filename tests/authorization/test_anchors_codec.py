"""Trust anchors (built-in default and the published shape) and the OMATrust codecs: every UID is recomputed from
its exact schema string, resolver 0x0 and revocability, and must equal the anchored one."""

from __future__ import annotations

import json

import pytest
from eth_abi.abi import encode

from service.chain import omatrust_codec as oc
from service.chain.codec import schema_uid
from service.domain import USER_REVIEW_SCHEMA, Reason
from service.errors import MalformedInput
from service.trust_anchors import load_trust_anchors
from service.verdicts.anchors import ANCHORED_SCHEMAS, parse_trust_anchors
from service.verdicts.onchain import ControllerWitness, KeyBinding, LinkedIdentifier, ReviewResponse


def test_current_uids_are_the_schema_strings() -> None:
    anchors = load_trust_anchors()
    assert anchors.current_uid(name="key-binding") == schema_uid(oc.KEY_BINDING_SCHEMA, revocable=True)
    assert anchors.current_uid(name="controller-witness") == schema_uid(oc.CONTROLLER_WITNESS_SCHEMA)
    assert anchors.current_uid(name="linked-identifier") == schema_uid(oc.LINKED_IDENTIFIER_SCHEMA, revocable=True)
    assert anchors.current_uid(name="user-review-response") == schema_uid(oc.REVIEW_RESPONSE_SCHEMA)
    assert anchors.current_uid(name="user-review") == schema_uid(USER_REVIEW_SCHEMA)
    # the published values (PROTOCOLS.md §8), spelled out once
    assert schema_uid(oc.KEY_BINDING_SCHEMA, revocable=True).startswith("0x807b38ce")
    assert schema_uid(oc.CONTROLLER_WITNESS_SCHEMA).endswith("5090")
    assert schema_uid(oc.LINKED_IDENTIFIER_SCHEMA, revocable=True).startswith("0x56d1e743")
    assert schema_uid(oc.REVIEW_RESPONSE_SCHEMA).startswith("0x53498ae8")


def test_prior_uids_are_read_never_written() -> None:
    anchors = load_trust_anchors()
    prior_kb = schema_uid(oc.KEY_BINDING_SCHEMA, revocable=False)
    assert prior_kb.startswith("0x290ce7f9")
    assert prior_kb in anchors.readable_uids(name="key-binding")
    assert anchors.current_uid(name="key-binding") != prior_kb
    li = anchors.readable_uids(name="linked-identifier")
    assert schema_uid(oc.LINKED_IDENTIFIER_WITH_METHOD_SCHEMA, revocable=True) in li  # 0x26e21911…
    assert schema_uid(oc.LINKED_IDENTIFIER_WITH_METHOD_SCHEMA, revocable=False) in li  # 0xed79388b…
    assert len(anchors.readable_uids(name="user-review")) == 4
    for name in ANCHORED_SCHEMAS:
        for uid in anchors.readable_uids(name=name):
            assert anchors.schema_name(uid=uid) == name
    # every anchored version of the four new schemas has a codec, except the oldest linked-identifier shape
    decodable = {u for n in ANCHORED_SCHEMAS[1:] for u in anchors.readable_uids(name=n)} & set(oc.VERSIONS)
    assert len(decodable) == 7


def test_approved_issuers_and_unknown_chain_falls_back() -> None:
    anchors = load_trust_anchors()
    assert anchors.is_approved(address="0x96FA5AB5E519641BD8A840A6B26D17DB7497618B", schema="controller-witness")
    assert not anchors.is_approved(address="0x96fa5ab5e519641bd8a840a6b26d17db7497618b", schema="key-binding")
    assert anchors.current_uid(name="key-binding", chain="eip155:31337") == anchors.current_uid(name="key-binding")


def test_custom_file(tmp_path) -> None:
    doc = {"version": 1, "updatedAt": "x", "chains": {"eip155:31337": {"name": "anvil", "easContract": "0x" + "1" * 40,
           "schemas": {"key-binding": "0x" + "ab" * 32}}},
           "registries": [{"type": "approved-issuers", "issuers": [{"address": "0x" + "2" * 40, "label": "me",
                                                                   "schemas": ["controller-witness"]}]}]}  # fmt: skip
    path = tmp_path / "anchors.json"
    path.write_text(json.dumps(doc))
    anchors = load_trust_anchors(path=str(path))
    assert anchors.current_uid(name="key-binding", chain="eip155:31337") == "0x" + "ab" * 32
    assert anchors.is_approved(address="0x" + "2" * 40, schema="controller-witness")


@pytest.mark.parametrize(
    "bad",
    [b"not json", b"[]", b'{"chains": {"eip155:1": {"easContract": "0x1", "schemas": {}}}}',
     b'{"chains": {"eip155:1": {"easContract": "0x' + b"1" * 40 + b'", "schemas": {"x": "0x12"}}}}',
     b'{"chains": {}, "registries": [{"type": "approved-issuers", "issuers": [{"address": "nope"}]}]}'],
)  # fmt: skip
def test_bad_anchor_files_are_refused(bad: bytes) -> None:
    with pytest.raises(MalformedInput) as err:
        parse_trust_anchors(data=bad)
    assert err.value.reason is Reason.BAD_FIELD_VALUE


def test_codecs_round_trip() -> None:
    kb = oc.encode_record(schema=oc.KEY_BINDING_SCHEMA,
                          values=["did:web:a.example", "did:pkh:eip155:1:0x" + "a" * 40, "", ["assertionMethod"],
                                  [], 10, 11, 0])  # fmt: skip
    got = oc.decode_attestation(schema_uid=schema_uid(oc.KEY_BINDING_SCHEMA, revocable=True), data=kb)
    assert got == KeyBinding("did:web:a.example", "did:pkh:eip155:1:0x" + "a" * 40, "", ("assertionMethod",), (),
                             10, 11, 0)  # fmt: skip
    w = oc.encode_record(schema=oc.CONTROLLER_WITNESS_SCHEMA, values=["did:web:a", "did:pkh:x", "dns-txt", 5])
    assert oc.decode_attestation(schema_uid=schema_uid(oc.CONTROLLER_WITNESS_SCHEMA), data=w) == ControllerWitness(
        "did:web:a", "did:pkh:x", "dns-txt", 5
    )
    li = oc.encode_record(schema=oc.LINKED_IDENTIFIER_WITH_METHOD_SCHEMA, values=["a", "b", "m", ["p"], 1, 2, 3])
    assert oc.decode_attestation(schema_uid=schema_uid(oc.LINKED_IDENTIFIER_WITH_METHOD_SCHEMA), data=li) == (
        LinkedIdentifier("a", "b", "m", ("p",), 1, 2, 3)
    )
    r = oc.encode_record(schema=oc.REVIEW_RESPONSE_SCHEMA, values=["did:web:a", "0x" + "1" * 64, "thanks"])
    assert oc.decode_attestation(schema_uid=schema_uid(oc.REVIEW_RESPONSE_SCHEMA), data=r) == ReviewResponse(
        "did:web:a", "0x" + "1" * 64, "thanks"
    )


def test_codec_rejects() -> None:
    w_uid = schema_uid(oc.CONTROLLER_WITNESS_SCHEMA)
    good = oc.encode_record(schema=oc.CONTROLLER_WITNESS_SCHEMA, values=["a", "b", "c", 1])
    for data in (good + b"\x00" * 32, good[:-1], b"\x01" * 10,
                 encode(["string", "string", "string", "uint256"], ["a\x00", "b", "c", 1])):  # fmt: skip
        with pytest.raises(MalformedInput) as err:
            oc.decode_attestation(schema_uid=w_uid, data=data)
        assert err.value.reason is Reason.ATTESTATION_DATA_INVALID
    with pytest.raises(MalformedInput) as err:
        oc.decode_attestation(schema_uid="0x" + "00" * 32, data=good)
    assert err.value.reason is Reason.SCHEMA_MISMATCH
