"""Chain sync of the OMATrust attestations besides User Reviews (Key Binding, Controller Witness, Linked Identifier,
User Review Response) and of ``Revoked`` events for the anchored schemas; and the on-chain context the
authorization tiers judge with.

Run by ``sync_chain`` before the User Reviews of the same block range are judged, so a review whose authorization
rests on a Key Binding or Controller Witness made earlier in that range already sees it. Its own checkpoint
(``omatrust-attestations``) advances in the transaction that stores a chunk; re-read blocks are harmless (the UID
is unique, revocations only ever set a time once).

Reorg-safe like the User Review indexer (``service.workflows.sync_reorg``): each chunk records, with the checkpoint,
the hash of its last block and of every block that held an attestation or a ``Revoked`` event. Before reading on,
the checkpoint block's hash is compared with the chain; on a mismatch the recorded hashes are walked down to the
fork point and, in one transaction, every attestation stored from a block above it is deleted, the revocation time
of every stored revoked attestation is re-read from the chain (a ``Revoked`` event in an orphaned block undone,
one in a canonical block kept), and the checkpoint moves back to the fork point; the canonical blocks are then
indexed as usual. The store then equals a fresh sync of the canonical chain.

Undecodable attestations are stored with status ``rejected`` and their reason; so is one whose judging or storing
raised (``service.workflows.isolation``): chain data never aborts the run. Review responses are judged here
(``service.verdicts.responses``): from an address authorized for the subject → ``authorized`` (shown under the
review), else ``unauthorized`` (kept, not shown).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import Session

from service.chain.eas_relayer import EasClient
from service.chain.omatrust_indexer import IndexedAttestation, scan_omatrust
from service.domain import Reason
from service.errors import ChainUnavailable
from service.records import ANCHORED_SCHEMAS, USER_REVIEW, USER_REVIEW_RESPONSE, ReviewResponse
from service.storable import unstorable
from service.store.batch import advance_indexer_checkpoint
from service.store.chains import remember_blocks, rewind_checkpoint
from service.store.engine import session_scope
from service.store.omatrust import (
    AUTHORIZED,
    REJECTED,
    UNAUTHORIZED,
    VALID,
    StoredAttestations,
    apply_revocations,
    delete_attestations_after,
    record_fields,
    revoked_uids,
    set_revocation_times,
    stored_uids,
)
from service.store.tables import OmatrustAttestationRow
from service.verdicts.onchain import OnchainContext, subject_key
from service.verdicts.responses import response_authorized
from service.workflows.fork_walk import find_fork
from service.workflows.isolation import judge_isolated, store_isolated
from service.workflows.runtime import Runtime

CHECKPOINT = "omatrust-attestations"
_ZERO_UID = "0x" + "00" * 32
log = logging.getLogger("omatrust.sync")


@dataclass
class OmatrustSyncReport:
    from_block: int | None = None
    to_block: int | None = None
    stored: int = 0
    rejected: int = 0
    revoked: int = 0
    fork: int | None = None  # the highest block still canonical, when a reorg was undone
    undone: int = 0  # attestations deleted from orphaned blocks
    revocations_undone: int = 0  # revocation times the chain no longer has (or now has differently)


def onchain_context(rt: Runtime, *, now: int, shared: bool = False) -> OnchainContext | None:
    """The on-chain tiers' context for one judgement (None: no trust anchors configured). ``shared``: rows read
    by this process's other judgements in the last seconds serve it (``rt.onchain_recent``; submissions and
    prepares — not sync, which judges against rows it is writing)."""
    if rt.anchors is None:
        return None
    lookup = StoredAttestations(engine=rt.engine, shared=rt.onchain_recent if shared else None)
    return OnchainContext(lookup=lookup, anchors=rt.anchors, now=now)


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


def _reject_row(found: IndexedAttestation, *, reason: Reason, detail: str, now: int) -> OmatrustAttestationRow:
    return OmatrustAttestationRow(
        uid=found.uid.lower(), schema_uid=found.schema_uid[:66], kind=found.kind[:32], attester=found.attester[:42],
        recipient=found.recipient[:42], attestation_time=found.time, revocation_time=found.revocation_time,
        block_number=found.block_number, block_hash=found.block_hash[:66], status=REJECTED, reason=reason.value,
        detail=detail[:500], seen_at=now,
    )  # fmt: skip


def _judged_row(rt: Runtime, found: IndexedAttestation, now: int) -> OmatrustAttestationRow:
    """``_row``, but one attestation can never stop indexing: what judging raises, or a value no database can
    hold, makes it a stored reject."""
    row = judge_isolated(
        judge=lambda: _row(rt, found, now),
        reject=lambda exc: _reject_row(
            found, reason=Reason.JUDGE_FAILED, detail=f"judging raised {type(exc).__name__}", now=now
        ),
        what=f"attestation {found.uid}",
        passthrough=(ChainUnavailable,),  # retrying can help: never judge an attestation on it
    )
    bad = unstorable([row.subject, row.detail, *_strings(row.fields)])
    if bad is not None:
        return _reject_row(found, reason=Reason.VALUE_NOT_STORABLE, detail=bad, now=now)
    return row


def _strings(fields: object) -> list[object]:
    if isinstance(fields, dict):
        return [v for value in fields.values() for v in _strings(value)]
    if isinstance(fields, list):
        return [v for value in fields for v in _strings(value)]
    return [fields] if isinstance(fields, str) else []


def _store_isolated(
    session: Session, *, rt: Runtime, found: list[IndexedAttestation], now: int, report: OmatrustSyncReport
) -> None:
    """Store the attestations not stored yet, each in its own savepoint: what the database refuses for one of them
    is stored as a reject (``judge-failed``) instead of aborting the chunk."""
    known = stored_uids(session, uids=[a.uid.lower() for a in found])
    for item in found:
        if item.uid.lower() in known:
            continue
        known.add(item.uid.lower())  # a UID read twice in one chunk is stored once
        row = _judged_row(rt, item, now)

        def store(row: OmatrustAttestationRow = row) -> None:
            session.add(row)
            session.flush()

        def reject(exc: Exception, item: IndexedAttestation = item) -> None:
            session.add(_reject_row(item, reason=Reason.JUDGE_FAILED, detail=f"storing raised {type(exc).__name__}",
                                    now=now))  # fmt: skip
            session.flush()

        stored = store_isolated(session, store=store, reject=reject, what=f"attestation {item.uid}")
        report.stored += 1
        report.rejected += int(not stored or row.status == REJECTED)


def _checkpoint_after_reorg(rt: Runtime, client: EasClient, report: OmatrustSyncReport) -> int | None:
    """The checkpoint to resume from, after undoing what orphaned blocks brought if the chain reorganized below it
    (module docstring). The fork walk is every indexer's (``fork_walk.find_fork``).

    Raises:
        ChainUnavailable: RPC failure (nothing changed).
    """
    resume = find_fork(engine=rt.engine, name=CHECKPOINT, chain=client)
    if resume.fork is None:
        return resume.checkpoint
    checkpoint, fork, fork_hash = resume.fork.checkpoint, resume.fork.block, resume.fork.block_hash
    with Session(rt.engine) as session:
        revoked = revoked_uids(session)
    records = client.get_attestations(uids=revoked)  # read before the write transaction: no RPC inside it
    times = {uid: rec.revocation_time if rec is not None else 0 for uid, rec in zip(revoked, records, strict=True)}
    now = int(rt.clock())
    with session_scope(rt.engine) as session:
        report.undone = delete_attestations_after(session, block=fork)
        report.revocations_undone = set_revocation_times(session, times=times)
        rewind_checkpoint(session, name=CHECKPOINT, block=fork, block_hash=fork_hash, now=now)
    report.fork = fork
    log.warning("omatrust sync: reorg below block %d: the chain forked after block %d; deleted %d attestations "
                "and corrected %d revocations from orphaned blocks, re-indexing from %d", checkpoint, fork,
                report.undone, report.revocations_undone, fork + 1)  # fmt: skip
    return fork


def sync_omatrust(
    *, rt: Runtime, client: EasClient, to_block: int, rewind: int = 0, chunk_blocks: int = 2_000
) -> OmatrustSyncReport:
    """Index the anchored OMATrust attestations from after the stored checkpoint (minus ``rewind`` blocks) up to
    ``to_block``. Does nothing without trust anchors.

    A reorg below the checkpoint is undone first (module docstring).

    Raises:
        ChainUnavailable: RPC failure (chunks already written stay written).
        sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    report = OmatrustSyncReport()
    if rt.anchors is None:
        return report
    try:
        return _sync(rt=rt, client=client, to_block=to_block, rewind=rewind, chunk_blocks=chunk_blocks, report=report)
    finally:  # what it stored, revoked or undid is what the next submissions must see
        rt.onchain_recent.clear()


def _sync(
    *, rt: Runtime, client: EasClient, to_block: int, rewind: int, chunk_blocks: int, report: OmatrustSyncReport
) -> OmatrustSyncReport:
    kinds = _schema_kinds(rt)
    checkpoint = _checkpoint_after_reorg(rt, client, report)
    start = 0 if checkpoint is None else max(0, checkpoint + 1 - rewind)
    report.from_block = start
    # Responses last: a response is judged against bindings/witnesses stored in the same chunk.
    order = {name: i for i, name in enumerate(ANCHORED_SCHEMAS)} | {USER_REVIEW_RESPONSE: len(ANCHORED_SCHEMAS)}
    while start <= to_block:
        end = min(to_block, start + chunk_blocks - 1)
        end_hash = client.block_hash(number=end)  # read first: a reorg during the scan shows as a mismatch later
        scan = scan_omatrust(client=client, schema_uids=list(kinds), kinds=kinds, from_block=start, to_block=end)
        now = int(rt.clock())
        found = sorted(scan.attestations, key=lambda a: (order.get(a.kind, 0), a.block_number))
        plain = [a for a in found if a.kind != USER_REVIEW_RESPONSE]
        responses = [a for a in found if a.kind == USER_REVIEW_RESPONSE]
        with session_scope(rt.engine) as session:
            report.revoked += apply_revocations(session, revoked=scan.revocations)
            # (on pysqlite a savepoint here may commit early: harmless, the rows are keyed by UID and the checkpoint
            # only moves in the second transaction)
            _store_isolated(session, rt=rt, found=plain, now=now, report=report)
        # Second transaction: responses are judged against what the first one committed; the checkpoint moves with
        # them (a crash in between re-reads the chunk, and the first part is then skipped as known). The checkpoint
        # is written first so the per-attestation savepoints nest inside an open transaction.
        with session_scope(rt.engine) as session:
            advance_indexer_checkpoint(session, name=CHECKPOINT, block=end, now=now)
            hashes = {a.block_number: a.block_hash for a in scan.attestations if a.block_hash}
            remember_blocks(session, name=CHECKPOINT, hashes={**scan.revocation_blocks, **hashes}, last_block=end,
                            last_hash=end_hash, chain_ref=rt.chain_ref)  # fmt: skip
            _store_isolated(session, rt=rt, found=responses, now=now, report=report)
        report.to_block = end
        start = end + 1
    return report
