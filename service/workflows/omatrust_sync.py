"""Chain sync of the OMATrust attestations besides User Reviews (Key Binding, Controller Witness, Linked Identifier,
User Review Response) and of ``Revoked`` events for the anchored schemas; and the on-chain context the
authorization tiers judge with.

Run by ``sync_chain`` before the User Reviews of the same block range are judged, so a review whose authorization
rests on a Key Binding or Controller Witness made earlier in that range already sees it. Its own checkpoint
(``omatrust-attestations``) advances in the transaction that stores a chunk; re-read blocks are harmless (the UID
is unique, revocations only ever set a time once). Undecodable attestations are stored with status ``rejected``
and their reason. Review responses are judged here (``service.verdicts.responses``): from an address authorized
for the subject → ``authorized`` (shown under the review), else ``unauthorized`` (kept, not shown).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from service.chain.eas import EasClient
from service.chain.omatrust_indexer import IndexedAttestation, scan_omatrust
from service.records import ANCHORED_SCHEMAS, USER_REVIEW, USER_REVIEW_RESPONSE, ReviewResponse
from service.store.batch import advance_indexer_checkpoint
from service.store.engine import session_scope
from service.store.omatrust import (
    AUTHORIZED,
    REJECTED,
    UNAUTHORIZED,
    VALID,
    StoredAttestations,
    add_attestations,
    apply_revocations,
    record_fields,
)
from service.store.tables import IndexerProgressRow, OmatrustAttestationRow
from service.verdicts.onchain import OnchainContext, subject_key
from service.verdicts.responses import response_authorized
from service.workflows.runtime import Runtime

CHECKPOINT = "omatrust-attestations"
_ZERO_UID = "0x" + "00" * 32


@dataclass
class OmatrustSyncReport:
    from_block: int | None = None
    to_block: int | None = None
    stored: int = 0
    rejected: int = 0
    revoked: int = 0


def onchain_context(rt: Runtime, *, now: int) -> OnchainContext | None:
    """The on-chain tiers' context for one judgement (None: no trust anchors configured)."""
    if rt.anchors is None:
        return None
    return OnchainContext(lookup=StoredAttestations(engine=rt.engine), anchors=rt.anchors, now=now)


def _schema_kinds(rt: Runtime) -> dict[str, str]:
    assert rt.anchors is not None
    kinds: dict[str, str] = {}
    for name in ANCHORED_SCHEMAS:
        if name == USER_REVIEW:
            continue  # User Reviews have their own indexer (service.workflows.sync)
        for uid in rt.anchors.readable_uids(name=name):
            kinds[uid] = name
    return kinds


def _row(rt: Runtime, found: IndexedAttestation, now: int) -> OmatrustAttestationRow:
    record = found.record
    subject = getattr(record, "subject", "") if record is not None else ""
    status, reason, detail = (VALID, None, "") if record is not None else (REJECTED, found.error, found.detail)
    ref_uid = found.ref_uid if found.ref_uid != _ZERO_UID else ""
    if isinstance(record, ReviewResponse):
        ref_uid = ref_uid or record.ref_uid.lower()
        context = onchain_context(rt, now=now)
        ok = context is not None and response_authorized(
            subject=record.subject, responder=found.attester, at=found.time, context=context
        )
        status = AUTHORIZED if ok else UNAUTHORIZED
    return OmatrustAttestationRow(
        uid=found.uid.lower(),
        schema_uid=found.schema_uid,
        kind=found.kind,
        attester=found.attester,
        recipient=found.recipient,
        subject=subject[:512],
        subject_key=subject_key(subject)[:512] if subject else "",
        ref_uid=ref_uid[:66],
        attestation_time=found.time,
        revocation_time=found.revocation_time,
        fields=record_fields(record) if record is not None else {},
        block_number=found.block_number,
        block_hash=found.block_hash,
        status=status,
        reason=reason.value if reason is not None else None,
        detail=detail,
        seen_at=now,
    )


def _checkpoint(session: Session) -> int | None:
    row = session.get(IndexerProgressRow, CHECKPOINT)
    return row.last_block if row is not None else None


def sync_omatrust(
    *, rt: Runtime, client: EasClient, to_block: int, rewind: int = 0, chunk_blocks: int = 2_000
) -> OmatrustSyncReport:
    """Index the anchored OMATrust attestations from after the stored checkpoint (minus ``rewind`` blocks) up to
    ``to_block``. Does nothing without trust anchors.

    Raises:
        ChainUnavailable: RPC failure (chunks already written stay written).
        sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    report = OmatrustSyncReport()
    if rt.anchors is None:
        return report
    kinds = _schema_kinds(rt)
    with session_scope(rt.engine) as session:
        checkpoint = _checkpoint(session)
    start = 0 if checkpoint is None else max(0, checkpoint + 1 - rewind)
    report.from_block = start
    # Responses last: a response is judged against bindings/witnesses stored in the same chunk.
    order = {name: i for i, name in enumerate(ANCHORED_SCHEMAS)} | {USER_REVIEW_RESPONSE: len(ANCHORED_SCHEMAS)}
    while start <= to_block:
        end = min(to_block, start + chunk_blocks - 1)
        scan = scan_omatrust(client=client, schema_uids=list(kinds), kinds=kinds, from_block=start, to_block=end)
        now = int(rt.clock())
        found = sorted(scan.attestations, key=lambda a: (order.get(a.kind, 0), a.block_number))
        plain = [a for a in found if a.kind != USER_REVIEW_RESPONSE]
        responses = [a for a in found if a.kind == USER_REVIEW_RESPONSE]
        with session_scope(rt.engine) as session:
            report.stored += add_attestations(session, rows=[_row(rt, a, now) for a in plain])
            report.revoked += apply_revocations(session, revoked=scan.revocations)
        # Second transaction: responses are judged against what the first one committed; the checkpoint moves with
        # them (a crash in between re-reads the chunk, and the first part is then skipped as known).
        with session_scope(rt.engine) as session:
            report.stored += add_attestations(session, rows=[_row(rt, a, now) for a in responses])
            advance_indexer_checkpoint(session, name=CHECKPOINT, block=end, now=now)
        report.rejected += sum(1 for a in found if a.record is None)
        report.to_block = end
        start = end + 1
    return report
