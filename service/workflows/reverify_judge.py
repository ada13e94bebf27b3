"""Judge stored reviews again — the CPU-bound half of ``omatrust reverify``, run in worker processes.

A task carries plain data only: the stored reviews (raw proof JSON + stored outcomes) and the evidence the parent
process gathered (``service.workflows.reverify_memo``). No database, no network: a worker never looks anything
up. When a review needs a document or DNS answer the parent did not send, the worker reports it as *needed*; the
parent fetches it (once per run) and sends the review again.

The rules are ``service.verdicts``: the review verdict over the fresh evidence, then ``rejudge`` ("authorized as of
issuedAt"; an ``indeterminate`` re-check keeps the stored verdict and is reported as an attempt). This module turns
the result into the row changes, attempts and tallies the parent writes.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import NamedTuple

from service.domain import Review
from service.store.batch import BatchProof, BatchReview
from service.verdicts import ProofEvaluation, ReviewPolicy, StoredReview, judge_review, rejudge
from service.verdicts.payment import keep_payment_backing
from service.verdicts.registry import CHAIN_PROOFS
from service.workflows.reverify_memo import INDETERMINATE, Evidence, TaskEvidence


class Task(NamedTuple):
    token: str  # identifies the run invocation
    reviews: list[tuple[BatchReview, list[BatchProof]]]
    evidence: Evidence
    now: int
    policy: ReviewPolicy
    allow_need: bool = True  # False: a missing look-up is judged "indeterminate" instead of being asked for


class ProofChange(NamedTuple):
    proof_id: int
    review_id: str
    position: int
    before_status: str
    before_reason: str | None
    values: dict[str, object]  # every column of the new outcome (same keys for every change)
    detail: str


class Attempt(NamedTuple):
    """A proof whose re-check could not be completed; its stored verdict was kept."""

    proof_id: int
    review_id: str
    kept_status: str
    reason: str | None
    detail: str


class ReviewChange(NamedTuple):
    review_id: str
    before: tuple[bool, str]  # (verified_purchase, evidence)
    after: tuple[bool, str]


class Need(NamedTuple):
    review_id: str
    dids: tuple[str, ...]
    hosts: tuple[str, ...]


class TaskResult(NamedTuple):
    reviews: int  # judged (not counting those returned as needs)
    proofs: int
    transitions: Counter[tuple[str, str]]  # (stored status, judged status) per proof
    proof_changes: list[ProofChange]
    attempts: list[Attempt]
    review_changes: list[ReviewChange]
    needs: list[Need]
    cpu_seconds: float


def judge_task(task: Task) -> TaskResult:
    """Judge every review of ``task`` (entry point of the worker processes; also callable in-process)."""
    started = time.process_time()
    sources = TaskEvidence(task.evidence, allow_need=task.allow_need)
    out = TaskResult(0, 0, Counter(), [], [], [], [], 0.0)
    judged = proofs = 0
    for review, stored in task.reviews:
        need = _judge_review(sources, task, review, stored, out)
        if need is not None:
            out.needs.append(need)
        else:
            judged += 1
            proofs += len(stored)
    return out._replace(reviews=judged, proofs=proofs, cpu_seconds=time.process_time() - started)


# ---- one review ---------------------------------------------------------------------------------------------------


def _judge_review(
    sources: TaskEvidence, task: Task, review: BatchReview, stored: list[BatchProof], out: TaskResult
) -> Need | None:
    sources.forget_needs()
    fresh = judge_review(
        review=Review(
            subject=review.subject,
            version="",
            rating_value=review.rating_value,
            review_body="",
            screenshot_urls=(),
            proofs=_proof_texts(review.proofs_json),
        ),
        attester=review.attester,
        review_time=review.review_time,
        now=task.now,
        documents=sources,
        controllers=sources,
        policy=task.policy,
    )
    if sources.needed_dids:  # documents first: they may make the DNS tier unnecessary
        return Need(review.id, tuple(sorted(sources.needed_dids)), ())
    if sources.needed_hosts:
        return Need(review.id, (), tuple(sorted(sources.needed_hosts)))

    judged = rejudge(
        fresh=fresh,
        stored=stored,
        review=StoredReview(review.subject, review.attester, review.review_time, review.problem),
        keys=sources,
        snapshots=sources,
        policy=task.policy,
    )
    stored_at = {p.position: p for p in stored}
    fresh_at = {p.position: p.outcome for p in fresh.proofs}
    for p in judged.verdict.proofs:
        sp = stored_at.get(p.position)
        if sp is None:
            continue  # a proof without a stored row (not written by this service): nothing to update
        if p.proof_type in CHAIN_PROOFS:
            continue  # checked by reading its chain (service.workflows.payment_check), not here: kept as stored
        if p.position in judged.kept:
            recheck = fresh_at[p.position]
            out.transitions[(sp.status, INDETERMINATE)] += 1
            reason = recheck.reason.value if recheck.reason else None
            out.attempts.append(Attempt(sp.id, review.id, sp.status, reason, recheck.detail[:500]))
            continue
        out.transitions[(sp.status, p.outcome.status.value)] += 1
        if _differs(p, sp):
            values = _columns(p)
            out.proof_changes.append(
                ProofChange(sp.id, review.id, p.position, sp.status, sp.reason, values, p.outcome.detail[:500])
            )
    before = (review.verified_purchase, review.evidence)
    evidence = keep_payment_backing(stored=review.evidence, judged=judged.verdict.evidence,
                                    verified_purchase=judged.verdict.verified_purchase)  # fmt: skip
    after = (judged.verdict.verified_purchase, evidence)
    if before != after:
        out.review_changes.append(ReviewChange(review.id, before, after))
    return None


def _proof_texts(proofs_json: str) -> tuple[str, ...]:
    try:
        proofs = json.loads(proofs_json)
    except ValueError:
        return ()
    return tuple(p for p in proofs if isinstance(p, str)) if isinstance(proofs, list) else ()


def _columns(p: ProofEvaluation) -> dict[str, object]:
    o = p.outcome
    reason = p.binding_reason or o.reason
    return {
        "status": o.status.value,
        "reason": reason.value if reason else None,
        "kind": o.kind.value if o.kind else None,
        "format": o.format.value if o.format else None,
        "signature_valid": o.signature_valid,
        "signer": o.signer,
        "tier": o.tier.value if o.tier else None,
        "replay_key": o.replay_key,
        "bound": p.bound,
        "issued_at": p.issued_at,
        "evidence_hash": o.evidence_hash,
        "checked_at": o.checked_at,
        "detail": o.detail[:500],
    }


def _differs(p: ProofEvaluation, sp: BatchProof) -> bool:
    """Whether the judged outcome differs from the stored row in anything but the time and detail text."""
    o = p.outcome
    reason = p.binding_reason or o.reason
    return (
        o.status != sp.status
        or (reason.value if reason else None) != sp.reason
        or o.signature_valid != sp.signature_valid
        or o.signer != sp.signer
        or (o.tier.value if o.tier else None) != sp.tier
        or p.bound != sp.bound
        or o.evidence_hash != sp.evidence_hash
        or o.replay_key != sp.replay_key
        or p.issued_at != sp.issued_at
        or (o.kind.value if o.kind else None) != sp.kind
        or (o.format.value if o.format else None) != sp.format
    )
