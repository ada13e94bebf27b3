"""Review submission: decode → validate → check the delegated signature → verify proofs → bind → store → enqueue.

The bytes the reviewer signed (EAS ``data``) are the bytes we decode and later attest: nothing is re-encoded.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlmodel import Session

from service.chain.addresses import checksum_cached
from service.chain.codec import decode_review, encode_review
from service.chain.publisher import DelegatedRequest
from service.dids import did_address, normalize_did
from service.domain import PaymentCheck, ProofStatus, Reason, Review
from service.errors import BindingFailed, MalformedInput, OmaTrustError, ReceiptAlreadyClaimed
from service.storable import unstorable, verdict_values
from service.store.batch import new_review_row, new_row
from service.store.engine import session_scope
from service.store.judged import (
    JudgedRows,
    Placement,
    Publication,
    Stored,
    Submission,
    store_judged_review,
    store_submissions,
)
from service.store.outbox import next_nonce, read_outbox_facts
from service.store.tables import ProofRow, ReviewRow
from service.verdicts import ReviewVerdict, is_self_review, raise_for_problem, validate_review
from service.verdicts.onchain import OnchainContext
from service.workflows.aggregate_batch import ChunkAggregates
from service.workflows.aggregates import review_change
from service.workflows.evaluate import evaluate_review
from service.workflows.evidence import keep_evidence
from service.workflows.nonces import nonce_to_check
from service.workflows.omatrust_sync import onchain_context
from service.workflows.payment_check import (
    check_payments,
    check_tx_interactions,
    raise_for_payment,
    raise_for_tx_interaction,
    start_chain_reads,
    with_payments,
)
from service.workflows.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A submission's outcome: the new review's rows as written (the answer is built from them, no re-read), or
    only the id when the same signed request had been accepted before (``existing``: nothing was written)."""

    review_id: str
    existing: bool = False
    review: ReviewRow | None = None
    proofs: tuple[ProofRow, ...] = ()


@dataclass(frozen=True, slots=True)
class Prepared:
    typed_data: dict[str, Any]
    data: bytes
    recipient: str


def normalize_address(value: str) -> str:
    """Lower-case 0x address.

    Raises:
        MalformedInput: not a 20-byte hex address.
    """
    try:
        return checksum_cached(value).lower()
    except (ValueError, TypeError) as exc:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, f"not an address: {value!r}") from exc


def prepare_review(*, rt: Runtime, attester: str, review: Review, deadline: int) -> Prepared:
    """Build the EAS ``Attest`` typed data the reviewer signs.

    Raises:
        MalformedInput: the review breaks a schema rule or the attester is not an address.
        ChainUnavailable: the nonce could not be read.
    """
    attester = normalize_address(attester)
    validate_review(review=review)
    data = encode_review(review=review)
    recipient = did_address(review.subject)
    typed = rt.eas.build_attest_typed_data(
        attester=checksum_cached(attester),
        data=data,
        recipient=recipient,
        deadline=deadline,
        nonce=expected_nonce(rt=rt, attester=attester),
    )
    return Prepared(typed_data=typed, data=data, recipient=recipient)


def expected_nonce(*, rt: Runtime, attester: str) -> int:
    """The EAS nonce the attester's next request must carry (``store.outbox.next_nonce`` of a fresh chain read and
    our outbox).

    Raises:
        ChainUnavailable: the nonce could not be read.
    """
    chain = rt.eas.get_nonce(attester=checksum_cached(attester))
    own = read_outbox_facts(rt.engine, content_key=None, attester=attester)
    return next_nonce(chain=chain, own_next=own.own_next)


def submit_review(*, rt: Runtime, attester: str, data: bytes, deadline: int, nonce: int, signature: str) -> str:
    """Accept a signed review and enqueue it for publishing. Returns the review id (existing id when the same
    signed request was already accepted). See :func:`accept_review`.

    Raises:
        the errors of :func:`accept_review`.
    """
    return accept_review(rt=rt, attester=attester, data=data, deadline=deadline, nonce=nonce,
                         signature=signature).review_id  # fmt: skip


def accept_review(*, rt: Runtime, attester: str, data: bytes, deadline: int, nonce: int, signature: str) -> Accepted:
    """Accept a signed review and enqueue it for publishing. Returns the rows written, or the existing review's id
    when the same signed request was already accepted.

    Database round-trips: the write transaction, and a read before any look-up (already accepted? the attester's
    next nonce as our outbox knows it: one statement, no transaction) only when the claimed nonce is not the one a
    recent or fresh chain read gives; the chain is read when no recent read of this process (or, that differing,
    the outbox) matches the claim (``service.workflows.nonces.nonce_to_check``). A refused request is looked up by
    its content key before the refusal is answered: the same request accepted before is answered with its review.

    Raises:
        MalformedInput: undecodable data or a schema rule broken (422).
        ChainRejected: delegated signature wrong, expired, or nonce not current (422).
        CheckFailed / BindingFailed: a proof is invalid or does not back this review (422);
            ``RECEIPT_REPLAYED`` when a receipt already backs another live review (409).
        CouldNotCheck: a look-up (DID document, DNS, RPC) failed; nothing stored (503).
    """
    attester = normalize_address(attester)
    review = decode_review(data=data)  # only the canonical encoding decodes
    validate_review(review=review)
    start_chain_reads(review=review, payments=rt.payments)  # the payment reads overlap the checks below
    now = int(rt.clock())
    recipient = did_address(review.subject)
    request = DelegatedRequest(
        attester=checksum_cached(attester),
        recipient=recipient,
        data=data,
        deadline=deadline,
        nonce=nonce,
        signature=bytes.fromhex(signature.removeprefix("0x")),
    )
    key = rt.eas.content_key(request=request)
    try:  # refused early (before any look-up); the nonce is checked again where it counts, in the write
        nonce_check = nonce_to_check(rt=rt, attester=attester, claimed=nonce,
                                     outbox=functools.partial(read_outbox_facts, rt.engine, content_key=key,
                                                             attester=attester))  # fmt: skip
        if nonce_check.facts is not None and nonce_check.facts.known_review_id is not None:
            return Accepted(review_id=nonce_check.facts.known_review_id, existing=True)
        rt.eas.check_delegated(request=request, now=now, expected_nonce=nonce_check.expected, review=review)
        verdict = check_proofs(rt=rt, attester=attester, review=review, now=now)
        verdict, payments = check_chain_evidence(rt=rt, attester=attester, review=review, verdict=verdict, now=now)
        refusal = unstorable(verdict_values(verdict, payments))  # e.g. a "\u0000" in a proof's JSON: not a 500
        if refusal:
            raise MalformedInput(Reason.VALUE_NOT_STORABLE, f"a proof holds a value no database can store: {refusal}")
    except OmaTrustError:
        known = read_outbox_facts(rt.engine, content_key=key, attester=attester).known_review_id
        if known is not None:  # the same request, accepted before or meanwhile: the outbox may not have been asked
            return Accepted(review_id=known, existing=True)  # (nonce_to_check)
        raise

    subject_normalized = normalize_did(review.subject)
    review_id = uuid.uuid4().hex
    receipt_keys = verdict.receipt_keys()
    written: list[JudgedRows] = []

    def judge(placement: Placement) -> JudgedRows:
        if placement.replayed:
            raise ReceiptAlreadyClaimed(*next(iter(placement.replayed.items())))
        row = new_review_row(  # every column given: SQLModel's per-field constructor costs ~0.4 ms
            id=review_id,
            subject=review.subject,
            subject_normalized=subject_normalized,
            did_address=recipient,
            attester=attester,
            version=review.version,
            rating_value=review.rating_value,
            review_body=review.review_body,
            screenshot_urls=list(review.screenshot_urls),
            proofs_json=list(review.proofs),
            data_hex="0x" + data.hex(),
            review_time=now,
            source="api",
            verified_purchase=verdict.verified_purchase,
            evidence=verdict.evidence,
            created_at=now,
            superseded_by=None,
            attestation_uid=None,
            problem=None,
            chain_ref=None,
            attestation_block=None,
        )
        rows = JudgedRows(review=row, proofs=proof_rows(review_id=review_id, verdict=verdict, payments=payments),
                          receipt_keys=receipt_keys)  # fmt: skip
        written.append(rows)
        return rows

    publication = Publication(
        content_key=key,
        recipient=recipient,
        data_hex="0x" + data.hex(),
        deadline=deadline,
        nonce=nonce,
        signature="0x" + request.signature.hex(),
        chain_nonce=nonce_check.chain,
    )
    submission = Submission(
        attester=attester,
        subject_normalized=subject_normalized,
        review_time=now,
        candidate_receipts=receipt_keys,
        judge=judge,
        publication=publication,
        riders=[rt.publish_job(attester)] if rt.publish_job is not None else (),  # workers publish: the job
    )  # commits with the rows
    done = rt.submissions.run(item=_Pending(rt=rt, submission=submission, verdict=verdict, now=now), write=_store_group)
    if done.stored.existing or not written:
        return Accepted(review_id=done.stored.review_id, existing=True)
    rt.kept_snapshots.add(done.kept)  # committed
    rt.publisher_wakeup()
    rows = written[-1]
    return Accepted(review_id=done.stored.review_id, review=rows.review, proofs=tuple(rows.proofs))


@dataclass(frozen=True, slots=True)
class _Pending:
    """A judged submission waiting to be stored with the others of its group."""

    rt: Runtime
    submission: Submission
    verdict: ReviewVerdict
    now: int


@dataclass(frozen=True, slots=True)
class _Done:
    stored: Stored
    kept: list[str]  # evidence snapshots written with it (committed)


def _store_group(items: Sequence[_Pending]) -> list[_Done | Exception]:
    """Store a group of submissions (``rt.submissions``): in one transaction when there are several; if that
    transaction fails as a whole for something one of its items may have caused (a value the database refuses, a
    deadlock, a bug), each is stored alone, so that one cannot fail the others. When the database cannot be used at
    all (unreachable, pool exhausted, busy), every caller gets that error at once (503, retry) instead of one more
    failing attempt per item. An item's refusal is its outcome."""
    if len(items) > 1:
        try:
            return _store_together(items)
        except Exception as exc:
            if _database_unusable(exc):
                return [exc] * len(items)
            log.warning("a group of %d submissions failed together (%s: %s): storing each alone", len(items),
                        type(exc).__name__, exc)  # fmt: skip
    return [_store_alone(p) for p in items]


_RETRY_ALONE_STATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


def _database_unusable(exc: BaseException) -> bool:
    """The database could not be used at all — not reached, connection lost, pool exhausted, locked (SQLite) —
    rather than refusing what a transaction wrote (a constraint, a value) or breaking a deadlock."""
    if isinstance(exc, (sa_exc.TimeoutError, sa_exc.InterfaceError)):
        return True
    if isinstance(exc, sa_exc.OperationalError):
        return getattr(exc.orig, "sqlstate", None) not in _RETRY_ALONE_STATES
    return False


def _store_alone(p: _Pending) -> _Done | Exception:
    rt, s = p.rt, p.submission
    try:
        with session_scope(rt.engine) as session:
            stored = store_judged_review(
                session, attester=s.attester, subject_normalized=s.subject_normalized, review_time=s.review_time,
                candidate_receipts=s.candidate_receipts, judge=s.judge, aggregates=review_change(rt), now=p.now,
                publication=s.publication, latest=True, riders=s.riders,
            )  # fmt: skip
            kept = [] if stored.existing else keep_proof_evidence(session, verdicts=[p.verdict], rt=rt)
    except Exception as exc:  # its caller's outcome, raised in its thread
        return exc
    return _Done(stored=stored, kept=kept)


def _store_together(items: Sequence[_Pending]) -> list[_Done | Exception]:
    """Raises: whatever the group's transaction raised (nothing of the group is stored)."""
    rt = items[0].rt
    now = max(p.now for p in items)
    aggregates = ChunkAggregates(rt=rt)
    with session_scope(rt.engine) as session:
        outcomes = store_submissions(session, items=[p.submission for p in items], aggregates=aggregates, now=now)
        stored = [p.verdict for p, o in zip(items, outcomes, strict=True) if isinstance(o, Stored) and not o.existing]
        kept = keep_proof_evidence(session, verdicts=stored, rt=rt)  # the group's, once each, in hash order
    return [_Done(stored=o, kept=kept) if isinstance(o, Stored) else o for o in outcomes]


def check_proofs(*, rt: Runtime, attester: str, review: Review, now: int) -> ReviewVerdict:
    """Judge ``review``'s proofs as of ``now`` and refuse a problem proof or a self-review (submit and prepare).

    Raises:
        CheckFailed / BindingFailed: a proof is invalid or does not back this review, or SELF_REVIEW (422).
        CouldNotCheck: a look-up failed (503; retry).
    """
    onchain = onchain_context(rt, now=now, shared=True)
    verdict = _evaluate(rt=rt, attester=attester, review=review, now=now, onchain=onchain)
    if onchain is not None and getattr(onchain.lookup, "reused", False) and not _all_verified_and_bound(verdict):
        # judged on attestation rows another judgement read (up to OMATRUST_ONCHAIN_CACHE_SECONDS old): what they
        # missed — a witness or binding just stored by another process — must not weaken the verdict
        verdict = _evaluate(rt=rt, attester=attester, review=review, now=now, onchain=onchain_context(rt, now=now))
    raise_for_problem(verdict)
    if is_self_review(attester=attester, verdict=verdict):
        raise BindingFailed(Reason.SELF_REVIEW, "the reviewer signed a proof of this review or is its payTo")
    return verdict


def _evaluate(*, rt: Runtime, attester: str, review: Review, now: int, onchain: OnchainContext | None) -> ReviewVerdict:
    return evaluate_review(review=review, attester=attester, review_time=now, now=now, resolver=rt.resolver,
                           controllers=rt.controllers, policy=rt.policy, onchain=onchain)  # fmt: skip


def _all_verified_and_bound(verdict: ReviewVerdict) -> bool:
    return all(p.outcome.status is ProofStatus.VERIFIED and p.bound for p in verdict.proofs)


def check_chain_evidence(
    *, rt: Runtime, attester: str, review: Review, verdict: ReviewVerdict, now: int
) -> tuple[ReviewVerdict, Mapping[int, PaymentCheck]]:
    """Check the receipts' payments and the tx-interaction proofs on chain (submit and prepare); returns the verdict
    with those outcomes and the payment checks by proof position.

    Raises:
        CheckFailed / BindingFailed: a payment or transaction does not back this review (422).
        CouldNotCheck: a look-up failed (503; retry).
    """
    payments = check_payments(verdict=verdict, payments=rt.payments, resolver=rt.resolver,
                              controllers=rt.controllers, now=now)  # fmt: skip
    raise_for_payment(payments)
    verdict = check_tx_interactions(verdict=with_payments(verdict, payments), review=review, attester=attester,
                                    payments=rt.payments, resolver=rt.resolver, controllers=rt.controllers,
                                    now=now)  # fmt: skip
    raise_for_tx_interaction(verdict)
    return verdict, payments


def proof_rows(
    *, review_id: str, verdict: ReviewVerdict, payments: Mapping[int, PaymentCheck] | None = None
) -> list[ProofRow]:
    """One ProofRow per proof of the verdict, with its frozen outcome (and payment verdict, for receipts)."""
    rows = []
    for p in verdict.proofs:
        o = p.outcome
        payment = (payments or {}).get(p.position)
        rows.append(
            new_row(
                ProofRow,
                review_id=review_id,
                position=p.position,
                proof_type=p.proof_type[:64],
                status=o.status.value,
                reason=reason.value if (reason := p.binding_reason or o.reason) else None,
                kind=o.kind.value if o.kind else None,
                format=o.format.value if o.format else None,
                signature_valid=o.signature_valid,
                signer=o.signer,
                tier=o.tier.value if o.tier else None,
                replay_key=o.replay_key,
                bound=p.bound,
                issued_at=p.issued_at,
                checked_at=o.checked_at,
                evidence_hash=o.evidence_hash,
                detail=o.detail[:500],
                payment=payment.to_json() if payment else None,
                payment_status=payment.status.value if payment else None,
            )
        )
    return rows


def keep_proof_evidence(session: Session, *, verdicts: Sequence[ReviewVerdict], rt: Runtime) -> list[str]:
    """Keep the DID documents / DNS answers that authorized the verdicts' proofs as evidence snapshots, except
    those ``rt.kept_snapshots`` knows are stored, in the order of their hashes (concurrent writers inserting the same
    snapshots in different orders would wait on each other's uncommitted rows). Returns the hashes written in this
    (uncommitted) transaction: the caller adds them to ``rt.kept_snapshots`` once it has committed."""
    wanted = {p.outcome.evidence_hash: p.artifact for v in verdicts for p in v.proofs
              if p.outcome.evidence_hash and p.artifact is not None}  # fmt: skip
    written: list[str] = []
    for h in sorted(wanted):
        artifact = wanted[h]
        if h not in rt.kept_snapshots and artifact is not None and keep_evidence(
            session, evidence_hash=h, artifact=artifact, rt=rt
        ):
            written.append(h)
    return written
