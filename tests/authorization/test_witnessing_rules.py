"""What the witness service accepts as an assertion of a controller (service.verdicts.witnessing), unit level; the
same rules against the loopback DNS server and HTTPS did:web host are in test_witness_service.py."""

from __future__ import annotations

from service.domain import ControllerRecord, DidDocument, VerificationKey
from service.verdicts.witnessing import dns_asserts, document_asserts

A = "0x" + "ab" * 20
B = "0x" + "cd" * 20
SUBJECT = "did:web:shop.example"


def _record(*controllers: str) -> ControllerRecord:
    return ControllerRecord(domain="shop.example", record_name="_controllers.shop.example", controllers=controllers)


def test_dns_assertion_matches_the_same_account_on_any_chain() -> None:
    checksum_case = f"did:pkh:eip155:1:0x{A[2:].upper()}"
    assert dns_asserts(record=_record(f"did:pkh:eip155:8453:{A}"), controller=checksum_case)
    assert dns_asserts(record=_record("did:web:owner.example"), controller="did:web:owner.example")
    assert not dns_asserts(record=_record(f"did:pkh:eip155:1:{B}"), controller=f"did:pkh:eip155:1:{A}")
    assert not dns_asserts(record=None, controller=f"did:pkh:eip155:1:{A}")


def _doc(doc_id: str = SUBJECT) -> DidDocument:
    key = VerificationKey(id=f"{SUBJECT}#evm-1", controller=SUBJECT, jwk=None, address=A)
    return DidDocument(id=doc_id, keys=(key,), assertion_method=(), snapshot_hash="")


def test_document_assertion() -> None:
    assert document_asserts(document=_doc(), subject=SUBJECT, controller=f"did:pkh:eip155:10:{A}")
    assert not document_asserts(document=_doc(), subject=SUBJECT, controller=f"did:pkh:eip155:10:{B}")
    assert not document_asserts(document=_doc("did:web:other.example"), subject=SUBJECT,
                                controller=f"did:pkh:eip155:10:{A}")  # fmt: skip
    assert not document_asserts(document=_doc(), subject=SUBJECT, controller=SUBJECT)  # the subject itself: no
