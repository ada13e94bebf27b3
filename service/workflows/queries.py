"""Read side: reviews with their proofs and publish state, in as few queries as possible."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from service.dids import normalize_did
from service.store.engine import session_scope
from service.store.omatrust import responses_for
from service.store.outbox import outboxes_for
from service.store.reviews import evidence_counts, get_review, list_reviews, proofs_for
from service.store.tables import OmatrustAttestationRow, OutboxRow, ProofRow, ReviewRow
from service.workflows.runtime import Runtime


@dataclass(frozen=True, slots=True)
class ReviewView:
    review: ReviewRow
    proofs: list[ProofRow]
    outbox: OutboxRow | None
    # Authorized User Review Responses to this review, oldest first (docs/authorization.md).
    responses: tuple[OmatrustAttestationRow, ...] = ()


def review_view(*, rt: Runtime, review_id: str) -> ReviewView | None:
    with session_scope(rt.engine) as session:
        row = get_review(session, review_id=review_id)
        if row is None:
            return None
        proofs = proofs_for(session, review_ids=[row.id])[row.id]
        outbox = outboxes_for(session, review_ids=[row.id]).get(row.id)
        responses = _responses(session, [row])
        return ReviewView(row, proofs, outbox, tuple(responses.get(row.attestation_uid or "", ())))


def service_reviews(
    *,
    rt: Runtime,
    did: str,
    verified: bool | None,
    cursor: str | None,
    limit: int,
    include_superseded: bool = False,
    evidence: str | None = None,
) -> tuple[list[ReviewView], str | None]:
    """Reviews of a service DID, newest first (``evidence``: one evidence class only).

    Raises:
        BadCursor: ``cursor`` is not one this service issued.
    """
    with session_scope(rt.engine) as session:
        page = list_reviews(
            session,
            subject_normalized=normalize_did(did),
            verified=verified,
            include_superseded=include_superseded,
            cursor=cursor,
            limit=limit,
            evidence=evidence,
        )
        ids = [r.id for r in page.rows]
        proofs = proofs_for(session, review_ids=ids)
        outboxes = outboxes_for(session, review_ids=ids)
        responses = _responses(session, page.rows)
        return [
            ReviewView(r, proofs[r.id], outboxes.get(r.id), tuple(responses.get(r.attestation_uid or "", ())))
            for r in page.rows
        ], page.next_cursor


def _responses(session: Session, rows: Sequence[ReviewRow]) -> dict[str, list[OmatrustAttestationRow]]:
    return responses_for(session, review_uids=[r.attestation_uid for r in rows if r.attestation_uid])


def live_evidence_counts(*, rt: Runtime, did: str) -> dict[str, int]:
    """Live reviews of a service DID per evidence class."""
    with session_scope(rt.engine) as session:
        return evidence_counts(session, subject_normalized=normalize_did(did))
