"""Chain sync (``omatrust sync``): index OMATrust User Reviews from EAS and store them as judged reviews.

For every attestation under the User Review schema between the stored checkpoint and ``head - confirmations``
(whoever made it — our publisher, another relayer, a reviewer calling ``attest`` directly):

* already stored (same UID) → skipped; one of our own API reviews with exactly this data and no UID yet (it was
  published but the publisher has not recorded the UID) → the UID is linked to it, nothing else changes;
* undecodable, or breaking the schema rules (rating 1–5, subject DID, sizes) → kept in ``chain_rejects`` with the
  reason, not as a review (it could not be scored);
* otherwise stored with source ``chain``: its proofs verified and bound with ``evaluate_review`` (review time =
  attestation time, attester = the on-chain attester), judged like any stored review (``review_facts``: replayed
  receipts and self-reviews are unbound — chain data cannot be refused, only judged). A ``recipient`` that is not
  the DID Address of the subject (either normalization) is stored with ``problem = "recipient-mismatch"`` and never
  counts as a verified purchase. Supersession is by (attester, normalized subject) and attestation time: an older
  review arriving after a newer one is stored already superseded. Receipts are claimed per replay key.

Each block range is written in one transaction together with the checkpoint, so the checkpoint never runs ahead of
what is stored; the unique attestation UID makes a concurrent or repeated run harmless (a chunk that collides is
rolled back and retried, and then skips what the other run stored). Safe to run alongside the API.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from service.chain.indexer import IndexedReview, ReviewIndexer
from service.dids import did_address_candidates, normalize_did
from service.domain import USER_REVIEW_SCHEMA_UID, ArtifactKind, ProofStatus, Reason
from service.errors import ChainRejected, MalformedInput
from service.store.batch import (
    add_chain_reject,
    advance_indexer_checkpoint,
    indexer_checkpoint,
    known_uids,
    live_or_newer,
    unlinked_own_review,
)
from service.store.engine import session_scope
from service.store.reviews import claim_receipts, receipt_holder
from service.store.tables import ChainRejectRow, ReviewRow
from service.workflows.aggregates import apply_review_change
from service.workflows.evaluate import ReviewVerdict, evaluate_review
from service.workflows.review_facts import with_store_facts
from service.workflows.runtime import Runtime
from service.workflows.submit import add_proof_rows
from service.workflows.validation import validate_review

CHECKPOINT = "user-reviews"
RECIPIENT_MISMATCH = Reason.RECIPIENT_MISMATCH.value
_RETRIES = 3


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
    with Session(rt.engine) as session:
        checkpoint = indexer_checkpoint(session, name=name)
    start = from_block if from_block is not None else indexer.start_block(checkpoint=checkpoint)
    safe_head = indexer.client.block_number() - indexer.confirmations
    end = safe_head if to_block is None else min(to_block, safe_head)
    report = SyncReport(from_block=start)
    with ThreadPoolExecutor(max_workers=max(1, lookup_threads), thread_name_prefix="omatrust-sync") as pool:
        while start <= end:
            chunk_end = min(end, start + indexer.chunk_blocks - 1)
            found = list(indexer.scan(from_block=start, to_block=chunk_end))
            _store_chunk(rt=rt, pool=pool, found=found, last_block=chunk_end, name=name, report=report)
            report.chunks += 1
            report.to_block = chunk_end
            if progress is not None:
                progress(report)
            start = chunk_end + 1
    return report


def _store_chunk(
    *, rt: Runtime, pool: ThreadPoolExecutor, found: list[IndexedReview], last_block: int, name: str,
    report: SyncReport,
) -> None:  # fmt: skip
    report.found += len(found)
    for attempt in range(_RETRIES):
        with Session(rt.engine) as session:
            known = known_uids(session, uids=[f.uid for f in found])
        fresh = [f for f in found if f.uid.lower() not in known]
        now = int(rt.clock())
        judged = list(pool.map(_judge, [rt] * len(fresh), fresh, [now] * len(fresh)))  # look-ups run concurrently
        counts = SyncReport()
        try:
            with session_scope(rt.engine) as session:
                for item in judged:
                    _store_one(session, rt=rt, item=item, now=now, counts=counts)
                advance_indexer_checkpoint(session, name=name, block=last_block, now=now)
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
    )
    return _Judged(found, verdict, None)


def _backing_receipts(verdict: ReviewVerdict) -> list[tuple[int, str]]:
    """(position, replay key) of the receipts that back this review (signature valid and bound). Only these claim
    their receipt: one that does not back the review (e.g. someone else's, payer ≠ attester) must not be able to
    block the rightful payer's review by claiming it first."""
    return [
        (p.position, p.artifact.replay_key)
        for p in verdict.proofs
        if p.artifact is not None and p.artifact.kind is ArtifactKind.RECEIPT and p.outcome.signature_valid and p.bound
    ]


def _store_one(session: Session, *, rt: Runtime, item: _Judged, now: int, counts: SyncReport) -> None:
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
    own = unlinked_own_review(session, attester=attester, subject_normalized=subject_normalized, data_hex=data_hex)
    if own is not None:
        own.attestation_uid = uid
        session.add(own)
        counts.linked += 1
        counts.reviews.append({"uid": uid, "linked": own.id})
        return

    problem = None if found.recipient.lower() in did_address_candidates(review.subject) else RECIPIENT_MISMATCH
    previous = live_or_newer(session, attester=attester, subject_normalized=subject_normalized)
    # One live review per (attester, subject): the latest by attestation time (ties: the one indexed last).
    arrives_superseded = previous is not None and previous.review_time > found.time
    superseding = previous.id if previous is not None and not arrives_superseded else None
    receipts = _backing_receipts(item.verdict)
    replayed: set[int] = set()
    for position, key in receipts:
        holder = receipt_holder(session, replay_key=key)
        if holder is not None and holder != superseding:
            replayed.add(position)
    verdict = with_store_facts(
        verdict=item.verdict, attester=attester, replayed_positions=replayed, problem=problem
    )
    review_id = uuid.uuid4().hex
    row = ReviewRow(
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
        superseded_by=previous.id if arrives_superseded and previous is not None else None,
        attestation_uid=uid,
        created_at=now,
        problem=problem,
    )
    session.add(row)
    session.flush()
    if not arrives_superseded:
        if previous is not None:
            previous.superseded_by = review_id
            session.add(previous)
        claim_receipts(
            session,
            replay_keys=[key for position, key in receipts if position not in replayed],
            review=row,
            superseding=superseding,
        )
    add_proof_rows(session, review_id=review_id, verdict=verdict, rt=rt)
    apply_review_change(session, added=row, removed=previous if superseding else None, now=now)
    counts.stored += 1
    counts.verified += int(verdict.verified_purchase)
    counts.superseded_on_arrival += int(arrives_superseded)
    counts.recipient_mismatch += int(problem is not None)
    counts.replayed += len(replayed)
    counts.indeterminate += int(any(p.outcome.status is ProofStatus.INDETERMINATE for p in verdict.proofs))
    counts.reviews.append({"uid": uid, "reviewId": review_id, "verifiedPurchase": verdict.verified_purchase,
                           "evidence": verdict.evidence, "problem": problem})  # fmt: skip

