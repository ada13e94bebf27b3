"""Queries for payment re-checks: the receipt proofs that carry a payment verdict, with their reviews' proofs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence

from sqlalchemy import or_
from sqlmodel import Session, col, select

from service.store.tables import ProofRow, ReviewRow


def reviews_with_payments(
    session: Session, *, statuses: Collection[str] | None = None, subject_normalized: str | None = None,
    review_ids: Sequence[str] | None = None, limit: int = 10_000, proof_types: Collection[str] = (),
) -> list[tuple[ReviewRow, list[ProofRow]]]:  # fmt: skip
    """Reviews having at least one proof with a payment verdict (``statuses``: only those payment statuses) or a
    proof of one of ``proof_types`` (chain-checked proofs, e.g. ``tx-interaction``), each with ALL its proofs in
    position order (offers give a receipt its payment terms)."""
    paid = col(ProofRow.payment_status).is_not(None)
    if statuses is not None:
        paid = col(ProofRow.payment_status).in_(list(statuses))
    wanted = select(ProofRow.review_id).where(
        or_(paid, col(ProofRow.proof_type).in_(list(proof_types))) if proof_types else paid
    )
    if review_ids is not None:
        wanted = wanted.where(col(ProofRow.review_id).in_(list(review_ids)))
    stmt = select(ReviewRow).where(col(ReviewRow.id).in_(wanted.distinct()))
    if subject_normalized is not None:
        stmt = stmt.where(col(ReviewRow.subject_normalized) == subject_normalized)
    reviews = list(session.execute(stmt.order_by(col(ReviewRow.id)).limit(limit)).scalars())
    if not reviews:
        return []
    proofs: dict[str, list[ProofRow]] = defaultdict(list)
    rows = session.execute(
        select(ProofRow).where(col(ProofRow.review_id).in_([r.id for r in reviews])).order_by(col(ProofRow.position))
    ).scalars()
    for p in rows:
        proofs[p.review_id].append(p)
    return [(r, proofs[r.id]) for r in reviews]
