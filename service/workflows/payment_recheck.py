"""Re-check stored payment verdicts against the payment networks (part of ``omatrust reverify``).

For every receipt proof that carries a payment verdict (optionally only some statuses, e.g. ``pending``), the
transaction is read again — never from the cache: a reorg is only seen by reading — and judged by the same rules as
at submission (``service.workflows.payment_check``). Then:

* an ``indeterminate`` answer (RPC down, network no longer configured, a look-up failed) keeps the stored verdict:
  never a downgrade; the try is recorded as an attempt;
* any other change is written with history (``outcome_history``: the proof's status is unchanged, the reasons say
  ``payment:<before>`` → ``payment:<after>``), and the review's evidence class follows: ``pending → settled``
  upgrades a verified purchase to ``payment-backed``, ``settled → not-found`` (a reorg removed the payment)
  downgrades it to ``verified``; aggregates are moved in the same transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from service.domain import (
    ArtifactKind,
    AuthTier,
    PaymentCheck,
    PaymentStatus,
    ProofOutcome,
    ProofStatus,
    SignedArtifact,
)
from service.errors import OmaTrustError
from service.identity.dns import ControllerResolver
from service.identity.resolver import DidResolver
from service.payments.reader import PaymentReader
from service.proofs import parse_artifact
from service.scoring import DEFAULT_PARAMS, ScoringParams
from service.store.batch import insert_attempts, insert_history, lock_reviews, update_proofs, update_reviews
from service.store.engine import session_scope
from service.store.payments import reviews_with_payments
from service.store.tables import ProofRow, ReviewRow
from service.verdicts import ProofEvaluation
from service.verdicts.payment import evidence_with_payment, unbacked_evidence
from service.workflows.payment_check import check_receipt_payment
from service.workflows.reclassify import reclassify


@dataclass(frozen=True, slots=True)
class PaymentChange:
    review_id: str
    proof_id: int
    position: int
    before: dict[str, Any] | None
    after: PaymentCheck

    def to_json(self) -> dict[str, Any]:
        before = self.before or {}
        return {"reviewId": self.review_id, "proofId": self.proof_id, "position": self.position,
                "before": {"status": before.get("status"), "reason": before.get("reason")},
                "after": self.after.to_json()}  # fmt: skip


@dataclass
class PaymentRecheckReport:
    checked: int = 0
    changes: list[PaymentChange] = field(default_factory=list)
    kept: list[tuple[str, int, str]] = field(default_factory=list)  # (review id, proof id, reason): indeterminate
    review_changes: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "changes": [c.to_json() for c in self.changes],
            "indeterminate": [{"reviewId": r, "proofId": p, "reason": why} for r, p, why in self.kept],
            "reviewChanges": self.review_changes,
        }


def _stored_evaluation(row: ProofRow, raw: str | None) -> ProofEvaluation:
    artifact: SignedArtifact | None = None
    if raw is not None and row.kind in (ArtifactKind.OFFER.value, ArtifactKind.RECEIPT.value):
        try:
            artifact = parse_artifact(data=json.loads(raw), expect=ArtifactKind(row.kind))
        except (OmaTrustError, ValueError):
            artifact = None
    try:
        tier = AuthTier(row.tier) if row.tier else None
    except ValueError:
        tier = None
    outcome = ProofOutcome(
        status=ProofStatus(row.status), reason=None, kind=ArtifactKind(row.kind) if row.kind else None, format=None,
        signature_valid=row.signature_valid, signer=row.signer, tier=tier, replay_key=row.replay_key,
        checked_at=row.checked_at,
    )  # fmt: skip
    return ProofEvaluation(row.position, row.proof_type, outcome, artifact, row.issued_at, row.bound, None)


def recheck_payments(
    *,
    engine: Engine,
    payments: PaymentReader | None,
    resolver: DidResolver | None,
    controllers: ControllerResolver | None,
    run_id: str,
    statuses: Collection[str] | None = None,
    subject_normalized: str | None = None,
    review_ids: Sequence[str] | None = None,
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
    params: ScoringParams = DEFAULT_PARAMS,
) -> PaymentRecheckReport:
    """Re-check the selected payment verdicts and write what changed (see the module docstring).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database failed (nothing of this call is written).
    """
    report = PaymentRecheckReport()
    now = int(clock())
    with session_scope(engine) as session:
        selected = reviews_with_payments(session, statuses=statuses, subject_normalized=subject_normalized,
                                         review_ids=review_ids)  # fmt: skip
    evidence_after: dict[str, str] = {}
    for review, rows in selected:
        raws: list[str] = list(review.proofs_json)
        evals = [_stored_evaluation(r, raws[r.position] if r.position < len(raws) else None) for r in rows]
        checks: list[PaymentCheck] = []
        for row, evaluation in zip(rows, evals, strict=True):
            if row.payment_status is None:
                continue
            report.checked += 1
            stored = PaymentCheck.from_json(row.payment) if row.payment else None
            fresh = check_receipt_payment(proof=evaluation, proofs=evals, payments=payments, resolver=resolver,
                                          controllers=controllers, now=now, fresh=True)  # fmt: skip
            if fresh is None or fresh.status is PaymentStatus.INDETERMINATE:
                reason = fresh.reason.value if fresh is not None and fresh.reason else "not-checked"
                report.kept.append((review.id, int(row.id or 0), reason))
                if stored is not None:
                    checks.append(stored)
                continue
            checks.append(fresh)
            if stored is None or (stored.status, stored.reason) != (fresh.status, fresh.reason):
                report.changes.append(PaymentChange(review.id, int(row.id or 0), row.position, row.payment, fresh))
        new = evidence_with_payment(evidence=unbacked_evidence(review.evidence),
                                    verified_purchase=review.verified_purchase, checks=checks)  # fmt: skip
        if new != review.evidence:
            evidence_after[review.id] = new
            report.review_changes.append({"reviewId": review.id, "before": {"evidence": review.evidence},
                                          "after": {"evidence": new}})  # fmt: skip
    if dry_run or not (report.changes or report.kept or evidence_after):
        return report
    with session_scope(engine) as session:
        update_proofs(session, changes=[{"id": c.proof_id, "payment": c.after.to_json(),
                                         "payment_status": c.after.status.value} for c in report.changes])  # fmt: skip
        statuses_of = {r.id: r.status for _, rows in selected for r in rows}
        insert_history(session, rows=[
            {"proof_id": c.proof_id, "review_id": c.review_id, "before_status": statuses_of.get(c.proof_id, ""),
             "after_status": statuses_of.get(c.proof_id, ""),
             "before_reason": f"payment:{(c.before or {}).get('status', 'unchecked')}",
             "after_reason": f"payment:{c.after.status.value}", "run_id": run_id, "changed_at": now}
            for c in report.changes
        ])  # fmt: skip
        insert_attempts(session, rows=[
            {"run_id": run_id, "proof_id": proof_id, "review_id": review_id, "kept_status": "payment",
             "reason": why[:64], "detail": "payment re-check could not run; stored payment verdict kept",
             "attempted_at": now}
            for review_id, proof_id, why in report.kept
        ])  # fmt: skip
        if evidence_after:
            locked: dict[str, ReviewRow] = lock_reviews(session, review_ids=sorted(evidence_after))
            present = [rid for rid in sorted(evidence_after) if rid in locked]
            reclassify(session, changes=[(locked[rid], evidence_after[rid]) for rid in present], now=now,
                       params=params)  # fmt: skip
            update_reviews(session, changes=[{"id": rid, "evidence": evidence_after[rid]} for rid in present])
    return report
