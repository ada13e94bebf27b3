"""Re-verification workers answer look-ups from the evidence their parent sent (``reverify_memo.TaskEvidence``):
what was sent is served (and parsed once), what was not is asked for and answered ``lookup-skipped``, failures are
re-raised as they happened, stored snapshots are read back in the formats ``service.verdicts.evidence`` defines."""

from __future__ import annotations

import hashlib
import json

import pytest

from service.domain import ControllerRecord, ProofStatus, Reason
from service.errors import CouldNotCheck, DnsFailed, FetchFailed
from service.store.batch import Snapshot
from service.verdicts.evidence import dns_evidence
from service.workflows.reverify_memo import Evidence, Failure, TaskEvidence
from tests.interop.keys import did_jwk, new_jwk

DID = "did:web:shop.example"
DOC = json.dumps(
    {"id": DID, "verificationMethod": [{"id": f"{DID}#k", "type": "JsonWebKey2020", "controller": DID,
     "publicKeyJwk": {k: v for k, v in new_jwk("ES256").items() if k != "d"}}]}
).encode()  # fmt: skip
RECORD = ControllerRecord(domain="shop.example", record_name="_controllers.shop.example", controllers=("did:web:x",))


def sources(*, allow_need: bool = True) -> TaskEvidence:
    kept = dns_evidence(RECORD)
    doc_hash = hashlib.sha256(DOC).hexdigest()
    snapshots = {
        doc_hash: Snapshot(doc_hash, DID, "did-document", DOC.decode(), 1),
        kept.evidence_hash: Snapshot(kept.evidence_hash, kept.did, kept.kind, kept.text, 1),
    }
    failure = Failure(ProofStatus.INDETERMINATE.value, Reason.FETCH_TIMEOUT.value, "slow")
    evidence = Evidence(
        docs={DID: DOC, "did:web:down.example": failure},
        dns={"shop.example": RECORD, "none.example": None},
        snapshots=snapshots,
    )
    return TaskEvidence(evidence, allow_need=allow_need)


def test_sent_evidence_is_served_and_parsed_once() -> None:
    s = sources()
    document = s.resolve_document(did=DID)
    assert document.snapshot_hash == hashlib.sha256(DOC).hexdigest()
    assert s.resolve_key(kid=f"{DID}#k")[1] is document
    assert s.lookup(domain="shop.example") == RECORD
    assert s.lookup(domain="none.example") is None
    assert (s.needed_dids, s.needed_hosts) == (set(), set())


def test_missing_evidence_is_asked_for_unless_it_may_not_be() -> None:
    s = sources()
    with pytest.raises(FetchFailed) as doc_error:
        s.resolve_document(did="did:web:other.example")
    with pytest.raises(DnsFailed) as dns_error:
        s.lookup(domain="other.example")
    assert doc_error.value.reason is dns_error.value.reason is Reason.LOOKUP_SKIPPED
    assert (s.needed_dids, s.needed_hosts) == ({"did:web:other.example"}, {"other.example"})
    s.forget_needs()
    assert (s.needed_dids, s.needed_hosts) == (set(), set())

    final = sources(allow_need=False)
    with pytest.raises(CouldNotCheck):
        final.resolve_document(did="did:web:other.example")
    assert final.needed_dids == set()


def test_a_failed_look_up_is_raised_as_it_happened_and_local_dids_need_none() -> None:
    s = sources()
    with pytest.raises(FetchFailed) as error:
        s.resolve_document(did="did:web:down.example")
    assert (error.value.reason, error.value.detail) == (Reason.FETCH_TIMEOUT, "slow")
    kid = did_jwk(new_jwk("ES256"))
    assert s.resolve_key(kid=kid)[1].id == kid.partition("#")[0]
    assert s.needed_dids == set()


def test_stored_snapshots_are_read_back() -> None:
    s = sources()
    doc_hash = hashlib.sha256(DOC).hexdigest()
    assert s.snapshot_document(evidence_hash=doc_hash) == s.resolve_document(did=DID)
    assert s.snapshot_key(evidence_hash=doc_hash, kid=f"{DID}#k").id == f"{DID}#k"
    assert s.snapshot_controllers(evidence_hash=dns_evidence(RECORD).evidence_hash) == RECORD
    assert s.snapshot_controllers(evidence_hash=doc_hash) is None
    assert s.snapshot_document(evidence_hash="0" * 64) is None
