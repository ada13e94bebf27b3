"""The witness service (``POST /v1/witness``): observe now whether the subject's DNS ``_controllers`` TXT or its
did.json asserts a controller and, when one does, publish a Controller Witness attestation (this service is the
attester; ``method`` says how it saw it; ``observedAt`` = now). Rules of what counts: ``service.verdicts.witnessing``.

Idempotent per (subject, controller, method) within ``window`` seconds: an attestation of ours for the same triple
observed in the window is returned instead of a new one (a process lock serializes the check and the publish; with
several API processes two identical requests may both publish — harmless, both are true observations). The new
attestation is stored at once (the later sync finds its UID known).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlmodel import col, select

from service.chain.omatrust_codec import CONTROLLER_WITNESS_SCHEMA, encode_record
from service.dids import did_address, did_web_document_url
from service.domain import ControllerRecord, DidDocument, Reason
from service.errors import ChainRejected, CheckFailed, CouldNotCheck, MalformedInput
from service.records import CONTROLLER_WITNESS, ControllerWitness
from service.store.engine import session_scope
from service.store.omatrust import VALID, add_attestations, record_fields
from service.store.tables import OmatrustAttestationRow
from service.verdicts.evidence import controller_host
from service.verdicts.onchain import subject_key
from service.verdicts.witnessing import DID_JSON, DNS_TXT, dns_asserts, document_asserts
from service.workflows.runtime import Runtime

DEFAULT_WINDOW = 24 * 3600
_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Witnessed:
    uid: str
    subject: str
    controller: str
    method: str
    observed_at: int
    attester: str
    created: bool


def _check_input(subject: str, controller: str) -> str:
    if not subject.startswith("did:web:") or len(subject) > 256:
        raise MalformedInput(Reason.INVALID_SUBJECT, "the subject must be a did:web DID")
    if not controller.startswith("did:") or len(controller.split(":")) < 3 or len(controller) > 512:
        raise MalformedInput(Reason.BAD_DID, "the controller must be a DID")
    return subject.strip()  # attested as given; matching is by the normalized form (subject_key)


def _observe(rt: Runtime, subject: str, controller: str) -> str:
    """How the controller is asserted now (``dns-txt`` first, then ``did-json``).

    Raises:
        MalformedInput(CONTROLLER_NOT_ASSERTED): neither asserts it (every look-up answered).
        CouldNotCheck: neither asserts it and a look-up failed (retrying can help).
    """
    failed: CouldNotCheck | None = None
    record: ControllerRecord | None = None
    host = controller_host(did_web_document_url(subject))
    if rt.controllers is not None:
        try:
            record = rt.controllers.lookup(domain=host)
        except CouldNotCheck as exc:
            failed = exc
    if dns_asserts(record=record, controller=controller):
        return DNS_TXT
    document: DidDocument | None = None
    if rt.resolver is not None:
        try:
            document = rt.resolver.resolve_document(did=subject)
        except CouldNotCheck as exc:
            failed = failed or exc
        except CheckFailed:
            document = None
    if document_asserts(document=document, subject=subject, controller=controller):
        return DID_JSON
    if failed is not None:
        raise failed
    raise MalformedInput(Reason.CONTROLLER_NOT_ASSERTED, f"neither _controllers TXT nor did.json of {subject} "
                         f"names {controller}")  # fmt: skip


def _recent(rt: Runtime, *, attester: str, subject: str, controller: str, method: str, since: int) -> Witnessed | None:
    with session_scope(rt.engine) as session:
        rows = session.exec(
            select(OmatrustAttestationRow)
            .where(col(OmatrustAttestationRow.kind) == CONTROLLER_WITNESS)
            .where(col(OmatrustAttestationRow.subject_key) == subject_key(subject))
            .where(col(OmatrustAttestationRow.attester) == attester)
            .where(col(OmatrustAttestationRow.attestation_time) >= since)
        ).all()
        for row in rows:
            f = row.fields
            if f.get("controller") == controller and f.get("method") == method:
                return Witnessed(row.uid, subject, controller, method, int(f.get("observed_at", 0)), attester, False)
    return None


def witness_controller(*, rt: Runtime, subject: str, controller: str, window: int = DEFAULT_WINDOW) -> Witnessed:
    """Observe and, when asserted, attest (module docstring).

    Raises:
        MalformedInput: INVALID_SUBJECT, BAD_DID, CONTROLLER_NOT_ASSERTED.
        CouldNotCheck: nothing asserted it and a DNS / did.json look-up failed.
        ChainRejected: WITNESS_UNAVAILABLE (no attesting key / no anchored witness schema), or a revert.
        ChainUnavailable: RPC failure.
    """
    subject = _check_input(subject, controller)
    method = _observe(rt, subject, controller)
    relayer = rt.eas.relayer
    if relayer is None:
        raise ChainRejected(Reason.WITNESS_UNAVAILABLE, "this service has no attesting key (relayer)")
    attester = relayer.address.lower()
    uid_of_schema = rt.anchors.current_uid(name=CONTROLLER_WITNESS) if rt.anchors is not None else None
    if uid_of_schema is None:
        raise ChainRejected(Reason.WITNESS_UNAVAILABLE, "no Controller Witness schema in the trust anchors")
    with _LOCK:
        now = int(rt.clock())
        found = _recent(rt, attester=attester, subject=subject, controller=controller, method=method,
                        since=now - window)  # fmt: skip
        if found is not None:
            return found
        record = ControllerWitness(subject=subject, controller=controller, method=method, observed_at=now)
        data = encode_record(schema=CONTROLLER_WITNESS_SCHEMA, values=[subject, controller, method, now])
        landed = rt.eas.attest_direct(data=data, recipient=did_address(subject), schema_uid=uid_of_schema)
        row = OmatrustAttestationRow(
            uid=landed.uid.lower(), schema_uid=uid_of_schema, kind=CONTROLLER_WITNESS, attester=attester,
            recipient=landed.recipient.lower(), subject=subject, subject_key=subject_key(subject), ref_uid="",
            attestation_time=now, revocation_time=0, fields=record_fields(record), block_number=landed.block_number,
            block_hash=landed.block_hash or "", status=VALID, reason=None, detail="observed by this service",
            seen_at=now,
        )  # fmt: skip
        with session_scope(rt.engine) as session:
            add_attestations(session, rows=[row])
        rt.onchain_recent.clear()
        return Witnessed(row.uid, subject, controller, method, now, attester, True)
