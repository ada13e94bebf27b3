"""Chain sync (``omatrust sync``): index OMATrust User Reviews from EAS and store them as judged reviews.

For every attestation under the User Review schema between the stored checkpoint and ``head - confirmations``
(whoever made it — our publisher, another relayer, a reviewer calling ``attest`` directly):

* already stored (same UID) → skipped; one of our own API reviews with exactly this data and no UID yet (it was
  published but the publisher has not recorded the UID) → the UID is linked to it, nothing else changes;
* undecodable, or breaking the schema rules (rating 1–5, subject DID, sizes) → kept in ``chain_rejects`` with the
  reason, not as a review (it could not be scored);
* otherwise stored with source ``chain``: its proofs verified and bound with ``evaluate_review`` (review time =
  attestation time, attester = the on-chain attester), judged like any stored review (``with_store_facts``:
  replayed receipts and self-reviews are unbound — chain data cannot be refused, only judged). A ``recipient``
  that is not the DID Address of the subject (either normalization) is stored with
  ``problem = "recipient-mismatch"`` and never counts as a verified purchase. Supersession is by (attester,
  normalized subject) and attestation time: an older review arriving after a newer one is stored already
  superseded. Receipts are claimed per replay key.

Each block range is written in one transaction together with the checkpoint, so the checkpoint never runs ahead of
what is stored; the unique attestation UID makes a concurrent or repeated run harmless (a chunk that collides is
rolled back and retried, and then skips what the other run stored). Safe to run alongside the API.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from service.chain.indexer import IndexedReview, ReviewIndexer
from service.dids import did_address_candidates, normalize_did
from service.domain import USER_REVIEW_SCHEMA_UID, PaymentCheck, ProofStatus, Reason
from service.errors import ChainRejected, MalformedInput
from service.storable import unstorable, verdict_values
from service.store.aggregates import lock_many
from service.store.batch import (
    add_chain_reject,
    advance_indexer_checkpoint,
    known_uids,
    new_review_row,
    unlinked_own_review,
)
from service.store.chains import attesters_with_unlinked, remember_blocks
from service.store.engine import session_scope
from service.store.judged import (
    ChunkWriter,
    JudgedRows,
    Placement,
    WriteTarget,
    lock_attesters,
    store_judged_review,
)
from service.store.tables import ChainRejectRow
from service.verdicts import ReviewVerdict, validate_review, with_store_facts
from service.workflows.aggregate_batch import ChunkAggregates
from service.workflows.aggregates import review_change
from service.workflows.evaluate import evaluate_review
from service.workflows.isolation import CHUNK_FAILURES, judge_isolated, store_isolated
from service.workflows.omatrust_sync import onchain_context, sync_omatrust
from service.workflows.payment_check import check_payments, with_payments
from service.workflows.runtime import Runtime
from service.workflows.submit import keep_proof_evidence, proof_rows
from service.workflows.sync_reorg import checkpoint_after_reorgs

log = logging.getLogger("omatrust.sync")
CHECKPOINT = "user-reviews"
RECIPIENT_MISMATCH = Reason.RECIPIENT_MISMATCH.value
_RETRIES = 3
# The aggregate changes of the chunk being stored (applied once per subject at the end of its transaction).
_CHUNK_AGGREGATES: contextvars.ContextVar[ChunkAggregates | None] = contextvars.ContextVar("chunk", default=None)
# The attesters of the chunk that have an API review without a UID (None: not known, look each one up).
_CHUNK_UNLINKED: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("unlinked", default=None)


@dataclass
class SyncReport:
    from_block: int | None = None
    to_block: int | None = None  # last block read (the checkpoint when the run completes)
    chunks: int = 0
    found: int = 0  # attestations read in the range
    stored: int = 0  # new reviews
    known: int = 0  # already stored (same UID)
    linked: int = 0  # our own reviews whose UID was linked
    rejected: int = 0  # undecodable / breaking schema rules (chain_rejects)
    verified: int = 0  # new reviews that are verified purchases
    superseded_on_arrival: int = 0
    recipient_mismatch: int = 0
    replayed: int = 0  # receipts found already backing another live review
    indeterminate: int = 0  # new reviews with a proof that could not be checked (re-run reverify later)
    reviews: list[dict[str, Any]] = field(default_factory=list)

    def exit_code(self) -> int:
        """0: synced; 3: some stored proofs are indeterminate (``omatrust reverify --status indeterminate``)."""
        return 3 if self.indeterminate else 0


@dataclass(frozen=True, slots=True)
class _Judged:
    found: IndexedReview
    verdict: ReviewVerdict | None
    reject: tuple[Reason, str] | None
    payments: dict[int, PaymentCheck] = field(default_factory=dict)  # receipt payment verdicts by position


def sync_chain(
    *,
    rt: Runtime,
    indexer: ReviewIndexer,
    from_block: int | None = None,
    to_block: int | None = None,
    name: str = CHECKPOINT,
    lookup_threads: int = 8,
    progress: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """Index and store User Reviews from ``from_block`` (default: after the stored checkpoint, minus the indexer's
    rewind) to ``to_block`` (default and at most: head − confirmations). The checkpoint only moves forward.

    Raises:
        ChainRejected(SCHEMA_MISMATCH): the client is not reading the User Review schema.
        ChainUnavailable: RPC failure (chunks already written stay written; the next run resumes there).
        sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    if indexer.client.schema_uid.lower() != USER_REVIEW_SCHEMA_UID:
        raise ChainRejected(Reason.SCHEMA_MISMATCH, f"indexer reads schema {indexer.client.schema_uid}")
    checkpoint = checkpoint_after_reorgs(rt=rt, client=indexer.client, name=name).checkpoint  # undoes orphans
    start = from_block if from_block is not None else indexer.start_block(checkpoint=checkpoint)
    safe_head = indexer.client.block_number() - indexer.confirmations
    end = safe_head if to_block is None else min(to_block, safe_head)
    report = SyncReport(from_block=start)
    # OMATrust bindings/witnesses/links first: the reviews below may be authorized by them (docs/authorization.md).
    sync_omatrust(rt=rt, client=indexer.client, to_block=end, rewind=indexer.rewind, chunk_blocks=indexer.chunk_blocks)
    with ThreadPoolExecutor(max_workers=max(1, lookup_threads), thread_name_prefix="omatrust-sync") as pool:
        while start <= end:
            chunk_end = min(end, start + indexer.chunk_blocks - 1)
            end_hash = indexer.client.block_hash(number=chunk_end)  # read first: a later reorg shows as a mismatch
            found = list(indexer.scan(from_block=start, to_block=chunk_end))
            _store_chunk(rt=rt, pool=pool, found=found, last_block=chunk_end, name=name, report=report,
                         end_hash=end_hash)  # fmt: skip
            report.chunks += 1
            report.to_block = chunk_end
            if progress is not None:
                progress(report)
            start = chunk_end + 1
    return report


def _store_chunk(
    *, rt: Runtime, pool: ThreadPoolExecutor, found: list[IndexedReview], last_block: int, name: str,
    report: SyncReport, end_hash: str | None = None,
) -> None:  # fmt: skip
    report.found += len(found)
    for attempt in range(_RETRIES):
        with Session(rt.engine) as session:
            known = known_uids(session, uids=[f.uid for f in found])
        fresh = [f for f in found if f.uid.lower() not in known]
        now = int(rt.clock())
        judged = _judge_all(rt=rt, pool=pool, fresh=fresh, now=now)
        hashes = {f.block_number: f.block_hash for f in found if f.block_hash}
        write = functools.partial(_write_chunk, rt=rt, judged=judged, now=now, name=name, last_block=last_block,
                                  hashes=hashes, end_hash=end_hash)  # fmt: skip
        try:
            try:
                counts = write(bulk=True)
            except CHUNK_FAILURES:
                raise
            except Exception:  # e.g. a value the database refuses: redo the chunk one attestation at a time
                log.warning("sync: bulk write of blocks up to %d failed; storing one by one", last_block,
                            exc_info=True)  # fmt: skip
                counts = write(bulk=False)
        except IntegrityError:
            if attempt == _RETRIES - 1:
                raise
            continue  # another sync stored some of these UIDs meanwhile: re-read what is known and redo the chunk
        report.known += len(found) - len(fresh)
        for key in ("stored", "linked", "rejected", "verified", "superseded_on_arrival", "recipient_mismatch",
                    "replayed", "indeterminate"):  # fmt: skip
            setattr(report, key, getattr(report, key) + getattr(counts, key))
        report.reviews.extend(counts.reviews)
        return


def _judge_all(*, rt: Runtime, pool: ThreadPoolExecutor, fresh: list[IndexedReview], now: int) -> list[_Judged]:
    """Judge a chunk's attestations, in order. Those with proofs go to the pool (their look-ups overlap); those
    without need no look-up and are judged inline (a thread hand-off costs more than judging one)."""
    def has_proofs(f: IndexedReview) -> bool:
        return f.review is not None and bool(f.review.proofs)

    slow = [f for f in fresh if has_proofs(f)]
    done = pool.map(_judge_isolated, [rt] * len(slow), slow, [now] * len(slow))  # concurrent look-ups
    return [next(done) if has_proofs(f) else _judge_isolated(rt, f, now) for f in fresh]


def _write_chunk(
    *, rt: Runtime, judged: list[_Judged], now: int, name: str, last_block: int, hashes: dict[int, str],
    end_hash: str | None, bulk: bool,
) -> SyncReport:  # fmt: skip
    """Store a judged chunk and its checkpoint in one transaction. ``bulk``: the store's facts for the whole chunk
    are read up front and its rows written in bulk (``ChunkWriter``), any failure aborting the chunk; otherwise each
    attestation is stored in a savepoint of its own and a failure makes just that one a reject."""
    counts = SyncReport()
    batch = ChunkAggregates(rt=rt)  # aggregates: applied once per subject when the chunk is stored
    token = _CHUNK_AGGREGATES.set(batch)
    try:
        with session_scope(rt.engine) as session:
            # Every attester of the chunk is locked first, sorted: the write path's lock order (store.judged).
            lock_attesters(session, attesters=[j.found.attester for j in judged])
            # The checkpoint is written first: a write opens the transaction (pysqlite begins lazily, before DML
            # only), so the per-attestation savepoints below nest inside it and the chunk stays atomic.
            advance_indexer_checkpoint(session, name=name, block=last_block, now=now)
            # one query for the chunk instead of one per attestation: who may have an API review to link
            _CHUNK_UNLINKED.set(attesters_with_unlinked(session, attesters=[j.found.attester.lower() for j in judged]))
            remember_blocks(session, name=name, hashes=hashes, last_block=last_block, last_hash=end_hash,
                            chain_ref=rt.chain_ref)  # fmt: skip
            # The subjects' aggregate rows are locked before any insert (the write path's lock order, store.judged):
            # a chunk never holds an inserted snapshot or claim while it waits for a row an API write holds. (Review
            # rows of the chunk's attesters need no earlier turn: no other writer of them gets past their locks.)
            subjects = sorted(_subjects_of(judged))
            if bulk:
                writer = _load_writer(session, judged=judged)
                lock_many(session, subjects=subjects, now=now)
                for item in judged:
                    _store_one(session, rt=rt, item=item, now=now, counts=counts, target=writer)
                writer.flush(session)
            else:
                lock_many(session, subjects=subjects, now=now)
                for item in judged:
                    _store_isolated(session, rt=rt, item=item, now=now, counts=counts)
            batch.flush(session, now=now)
    finally:
        _CHUNK_AGGREGATES.reset(token)
        _CHUNK_UNLINKED.set(None)
    return counts


def _subjects_of(judged: list[_Judged]) -> set[str]:
    """The normalized subjects of the chunk's reviews that will be stored (their aggregates change)."""
    return {normalize_did(item.found.review.subject) for item in judged
            if item.reject is None and item.verdict is not None and item.found.review is not None}  # fmt: skip


def _load_writer(session: Session, *, judged: list[_Judged]) -> ChunkWriter:
    """The chunk's facts in one query each: live reviews of its (attester, subject) pairs, holders of its receipts."""
    pairs: set[tuple[str, str]] = set()
    keys: set[str] = set()
    for item in judged:
        if item.reject is None and item.verdict is not None and item.found.review is not None:
            pairs.add((item.found.attester.lower(), normalize_did(item.found.review.subject)))
            keys.update(key for _, key in item.verdict.backing_receipts())
    return ChunkWriter.load(session, pairs=pairs, replay_keys=keys)


def _judge_isolated(rt: Runtime, found: IndexedReview, now: int) -> _Judged:
    """``_judge``, but one attestation can never stop indexing: anything it raises, or a value the database cannot
    hold, makes it a stored reject (chain data is judged, never allowed to abort the run)."""
    judged = judge_isolated(
        judge=lambda: _judge(rt, found, now),
        reject=lambda exc: _Judged(found, None, (Reason.JUDGE_FAILED, f"judging raised {type(exc).__name__}")),
        what=f"attestation {found.uid}",
    )
    if judged.reject is not None and judged.reject[0] is Reason.JUDGE_FAILED:
        return judged
    bad = unstorable(_judged_values(judged))
    if bad is not None:
        return _Judged(found, None, (Reason.VALUE_NOT_STORABLE, bad))
    return judged


def _judged_values(judged: _Judged) -> list[object]:
    review = judged.found.review
    values: list[object] = []
    if review is not None:
        values += [review.subject, review.version, review.review_body, *review.screenshot_urls, *review.proofs]
    if judged.verdict is not None:
        values += verdict_values(judged.verdict, judged.payments)
    return values


def _store_isolated(session: Session, *, rt: Runtime, item: _Judged, now: int, counts: SyncReport) -> None:
    """``_store_one`` inside a savepoint: a value the database refuses (DataError) or any other failure of this one
    attestation is rolled back and stored as a reject instead. Unique-key collisions (a concurrent sync) and lost
    connections still abort the chunk, which is retried / resumed whole."""
    part = SyncReport()  # counted only once the savepoint is released
    batch = _CHUNK_AGGREGATES.get()
    mark = batch.mark() if batch is not None else 0  # so are its aggregate changes

    def reject(exc: Exception) -> None:
        nonlocal part
        failed = _Judged(item.found, None, (Reason.JUDGE_FAILED, f"storing raised {type(exc).__name__}"))
        part = SyncReport()
        _store_one(session, rt=rt, item=failed, now=now, counts=part)

    store_isolated(
        session,
        store=lambda: _store_one(session, rt=rt, item=item, now=now, counts=part),
        reject=reject,
        what=f"attestation {item.found.uid}",
        undo=(lambda: batch.rollback_to(mark)) if batch is not None else None,
    )
    for key in ("stored", "linked", "rejected", "verified", "superseded_on_arrival", "recipient_mismatch",
                "replayed", "indeterminate"):  # fmt: skip
        setattr(counts, key, getattr(counts, key) + getattr(part, key))
    counts.reviews.extend(part.reviews)


def _judge(rt: Runtime, found: IndexedReview, now: int) -> _Judged:
    review = found.review
    if review is None:
        return _Judged(found, None, (found.error or Reason.ATTESTATION_DATA_INVALID, "data is not a User Review"))
    try:
        validate_review(review=review)
    except MalformedInput as exc:
        return _Judged(found, None, (exc.reason, exc.detail))
    verdict = evaluate_review(
        review=review,
        attester=found.attester.lower(),
        review_time=found.time,
        now=now,
        resolver=rt.resolver,
        controllers=rt.controllers,
        policy=rt.policy,
        onchain=onchain_context(rt, now=now),
    )
    # Chain data is never refused: a payment that does not match is recorded, the review is just not payment-backed.
    payments = check_payments(verdict=verdict, payments=rt.payments, resolver=rt.resolver,
                              controllers=rt.controllers, now=now)  # fmt: skip
    return _Judged(found, verdict, None, payments)


@functools.lru_cache(maxsize=4096)
def _address_candidates(subject: str) -> frozenset[str]:
    """``did_address_candidates`` of a subject, cached (a chunk holds many reviews of few subjects)."""
    return did_address_candidates(subject)


def _store_one(
    session: Session, *, rt: Runtime, item: _Judged, now: int, counts: SyncReport, target: WriteTarget | None = None
) -> None:
    found = item.found
    uid = found.uid.lower()
    attester = found.attester.lower()
    if item.reject is not None or item.verdict is None or found.review is None:
        reason, detail = item.reject or (Reason.ATTESTATION_DATA_INVALID, "")
        add_chain_reject(
            session,
            row=ChainRejectRow(
                uid=uid, attester=attester, recipient=found.recipient.lower(), attestation_time=found.time,
                block_number=found.block_number, reason=reason.value, detail=detail[:500], seen_at=now,
            ),
        )  # fmt: skip
        counts.rejected += 1
        counts.reviews.append({"uid": uid, "rejected": reason.value})
        return
    review = found.review
    subject_normalized = normalize_did(review.subject)
    data_hex = "0x" + found.data.hex()
    candidates = _CHUNK_UNLINKED.get()
    own = (
        unlinked_own_review(session, attester=attester, subject_normalized=subject_normalized, data_hex=data_hex)
        if candidates is None or attester in candidates
        else None
    )
    if own is not None:
        own.attestation_uid, own.chain_ref, own.attestation_block = uid, rt.chain_ref, found.block_number
        session.add(own)
        counts.linked += 1
        counts.reviews.append({"uid": uid, "linked": own.id})
        return

    problem = None if found.recipient.lower() in _address_candidates(review.subject) else RECIPIENT_MISMATCH
    judged = item.verdict
    receipts = judged.backing_receipts()
    review_id = uuid.uuid4().hex
    final: list[ReviewVerdict] = []
    replayed: set[int] = set()

    def judge(placement: Placement) -> JudgedRows:
        replayed.update(position for position, key in receipts if key in placement.replayed)
        verdict = with_store_facts(
            verdict=judged, attester=attester, replayed_positions=replayed, problem=problem
        )
        verdict = with_payments(verdict, item.payments)
        final.append(verdict)
        row = new_review_row(
            id=review_id,
            subject=review.subject,
            subject_normalized=subject_normalized,
            did_address=found.recipient.lower(),
            attester=attester,
            version=review.version,
            rating_value=review.rating_value,
            review_body=review.review_body,
            screenshot_urls=list(review.screenshot_urls),
            proofs_json=list(review.proofs),
            data_hex=data_hex,
            review_time=found.time,
            source="chain",
            verified_purchase=verdict.verified_purchase,
            evidence=verdict.evidence,
            superseded_by=None,
            attestation_uid=uid,
            created_at=now,
            problem=problem,
            chain_ref=rt.chain_ref,
            attestation_block=found.block_number,
        )
        claims = [key for position, key in receipts if position not in replayed]
        return JudgedRows(review=row, proofs=proof_rows(review_id=review_id, verdict=verdict, payments=item.payments),
                          receipt_keys=claims)  # fmt: skip

    stored = store_judged_review(
        session,
        attester=attester,
        subject_normalized=subject_normalized,
        review_time=found.time,
        candidate_receipts=[key for _, key in receipts],
        judge=judge,
        aggregates=_CHUNK_AGGREGATES.get() or review_change(rt),
        now=now,
        locked=True,  # the chunk holds every attester's lock (_write_chunk)
        target=target,
    )
    verdict = final[-1]
    keep_proof_evidence(session, verdicts=[verdict], rt=rt)
    arrives_superseded = stored.arrives_superseded
    counts.stored += 1
    counts.verified += int(verdict.verified_purchase)
    counts.superseded_on_arrival += int(arrives_superseded)
    counts.recipient_mismatch += int(problem is not None)
    counts.replayed += len(replayed)
    counts.indeterminate += int(any(p.outcome.status is ProofStatus.INDETERMINATE for p in verdict.proofs))
    counts.reviews.append({"uid": uid, "reviewId": review_id, "verifiedPurchase": verdict.verified_purchase,
                           "evidence": verdict.evidence, "problem": problem})  # fmt: skip

