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

``tx-interaction`` proofs of the same reviews are re-read the same way (only when no payment ``statuses`` filter is
given): a transaction that is now unknown (a reorg), reverted or sent by someone else changes the proof's status
and reason, with history (``verified`` → ``invalid``, or ``indeterminate`` → ``verified`` once confirmed; a target
address the subject no longer lists does not discredit a verified proof: ``tx_interaction.keeps_stored``), and
the review's evidence class is recomputed from its stored parts (signed proofs, verified chain proofs, settled
payments): it leaves ``tx-interaction`` when that proof no longer verifies. An ``indeterminate`` re-read (network
not configured, RPC down, not enough confirmations after a reorg, a look-up failed) keeps the stored outcome and
is recorded as an attempt: never a downgrade.
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
    Reason,
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
from service.verdicts.payment import evidence_with_payment, stored_evidence, unbacked_evidence
from service.verdicts.registry import CHAIN_PROOFS, NONE
from service.verdicts.review import evidence_class
from service.verdicts.tx_interaction import keeps_stored
from service.workflows.payment_check import check_receipt_payment, tx_interaction_verdict
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


@dataclass(frozen=True, slots=True)
class TxProofChange:
    """A ``tx-interaction`` proof whose re-read changed its outcome."""

    review_id: str
    proof_id: int
    position: int
    before: tuple[str, str | None]  # (status, reason)
    after: tuple[ProofStatus, Reason | None]
    detail: str

    def to_json(self) -> dict[str, Any]:
        status, reason = self.after
        return {"reviewId": self.review_id, "proofId": self.proof_id, "position": self.position,
                "proofType": TX_PROOF, "before": {"status": self.before[0], "reason": self.before[1]},
                "after": {"status": status.value, "reason": reason.value if reason else None,
                          "detail": self.detail}}  # fmt: skip


@dataclass
class PaymentRecheckReport:
    checked: int = 0
    changes: list[PaymentChange | TxProofChange] = field(default_factory=list)
    kept: list[tuple[str, int, str]] = field(default_factory=list)  # (review id, proof id, reason): indeterminate
    review_changes: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "changes": [c.to_json() for c in self.changes],
            "indeterminate": [{"reviewId": r, "proofId": p, "reason": why} for r, p, why in self.kept],
            "reviewChanges": self.review_changes,
        }


TX_PROOF = CHAIN_PROOFS["tx-interaction"].proof_type


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
                                         review_ids=review_ids,
                                         proof_types=(TX_PROOF,) if statuses is None else ())  # fmt: skip
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
        tx_after: dict[int, ProofStatus] = {}  # position → status now (re-read, or kept as stored)
        if statuses is None:
            for row in rows:
                if row.proof_type != TX_PROOF or row.position >= len(raws):
                    continue
                report.checked += 1
                verdict, why, detail = tx_interaction_verdict(
                    subject=review.subject, raw=raws[row.position], attester=review.attester, payments=payments,
                    resolver=resolver, controllers=controllers, fresh=True,
                )  # fmt: skip
                if keeps_stored(stored=ProofStatus(row.status), fresh=verdict):
                    if verdict is ProofStatus.INDETERMINATE:  # could not be re-read: an attempt
                        report.kept.append((review.id, int(row.id or 0), why.value if why else "not-checked"))
                    tx_after[row.position] = ProofStatus(row.status)
                    continue
                tx_after[row.position] = verdict
                if (verdict.value, why.value if why else None) != (row.status, row.reason):
                    before = (row.status, row.reason)
                    report.changes.append(TxProofChange(review.id, int(row.id or 0), row.position, before,
                                                        (verdict, why), detail))  # fmt: skip
        if tx_after:  # the class is recomputed from the stored parts (a tx-interaction proof may have moved)
            signed = NONE if review.problem else evidence_class(evals)
            chain = [r.proof_type for r in rows
                     if r.proof_type in CHAIN_PROOFS
                     and tx_after.get(r.position, ProofStatus(r.status)) is ProofStatus.VERIFIED]  # fmt: skip
            new = stored_evidence(signed_evidence=signed, verified_chain_proofs=chain,
                                  verified_purchase=review.verified_purchase, checks=checks)  # fmt: skip
        else:
            new = evidence_with_payment(evidence=unbacked_evidence(review.evidence),
                                        verified_purchase=review.verified_purchase, checks=checks)  # fmt: skip
        if new != review.evidence:
            evidence_after[review.id] = new
            report.review_changes.append({"reviewId": review.id, "before": {"evidence": review.evidence},
                                          "after": {"evidence": new}})  # fmt: skip
    if dry_run or not (report.changes or report.kept or evidence_after):
        return report
    paid = [c for c in report.changes if isinstance(c, PaymentChange)]
    moved = [c for c in report.changes if isinstance(c, TxProofChange)]
    with session_scope(engine) as session:
        update_proofs(session, changes=[{"id": c.proof_id, "payment": c.after.to_json(),
                                         "payment_status": c.after.status.value} for c in paid])  # fmt: skip
        update_proofs(session, changes=[
            {"id": c.proof_id, "status": c.after[0].value, "reason": c.after[1].value if c.after[1] else None,
             "detail": c.detail[:500], "checked_at": now, "bound": c.after[0] is ProofStatus.VERIFIED,
             "signature_valid": c.after[0] is ProofStatus.VERIFIED}
            for c in moved
        ])  # fmt: skip
        statuses_of = {r.id: r.status for _, rows in selected for r in rows}
        insert_history(session, rows=[
            {"proof_id": c.proof_id, "review_id": c.review_id, "before_status": statuses_of.get(c.proof_id, ""),
             "after_status": statuses_of.get(c.proof_id, ""),
             "before_reason": f"payment:{(c.before or {}).get('status', 'unchecked')}",
             "after_reason": f"payment:{c.after.status.value}", "run_id": run_id, "changed_at": now}
            for c in paid
        ] + [
            {"proof_id": c.proof_id, "review_id": c.review_id, "before_status": c.before[0],
             "after_status": c.after[0].value, "before_reason": c.before[1],
             "after_reason": c.after[1].value if c.after[1] else None, "run_id": run_id, "changed_at": now}
            for c in moved
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
