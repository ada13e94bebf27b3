"""Read side: reviews with their proofs and publish state, in as few queries as possible."""

from __future__ import annotations

from dataclasses import dataclass

from service.dids import normalize_did
from service.store.engine import session_scope
from service.store.outbox import outboxes_for
from service.store.reviews import get_review, list_reviews, proofs_for
from service.store.tables import OutboxRow, ProofRow, ReviewRow
from service.workflows.runtime import Runtime


@dataclass(frozen=True, slots=True)
class ReviewView:
    review: ReviewRow
    proofs: list[ProofRow]
    outbox: OutboxRow | None


def review_view(*, rt: Runtime, review_id: str) -> ReviewView | None:
    with session_scope(rt.engine) as session:
        row = get_review(session, review_id=review_id)
        if row is None:
            return None
        proofs = proofs_for(session, review_ids=[row.id])[row.id]
        outbox = outboxes_for(session, review_ids=[row.id]).get(row.id)
        return ReviewView(row, proofs, outbox)


def service_reviews(
    *, rt: Runtime, did: str, verified: bool | None, cursor: str | None, limit: int, include_superseded: bool = False
) -> tuple[list[ReviewView], str | None]:
    """Reviews of a service DID, newest first.

    Raises:
        ValueError: bad cursor.
    """
    with session_scope(rt.engine) as session:
        page = list_reviews(
            session,
            subject_normalized=normalize_did(did),
            verified=verified,
            include_superseded=include_superseded,
            cursor=cursor,
            limit=limit,
        )
        ids = [r.id for r in page.rows]
        proofs = proofs_for(session, review_ids=ids)
        outboxes = outboxes_for(session, review_ids=ids)
        return [ReviewView(r, proofs[r.id], outboxes.get(r.id)) for r in page.rows], page.next_cursor
