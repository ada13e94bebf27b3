"""Queries on reviews, proofs and receipt claims. Functions take a session; the caller owns the transaction."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from service.errors import BadCursor
from service.errors import ReceiptAlreadyClaimed as ReceiptAlreadyClaimed  # raised here; re-exported for callers
from service.storable import unstorable
from service.store.tables import ProofRow, ReceiptClaimRow, ReviewRow


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[ReviewRow]
    next_cursor: str | None


def get_review(session: Session, *, review_id: str) -> ReviewRow | None:
    return session.get(ReviewRow, review_id)


def get_review_by_uid(session: Session, *, uid: str) -> ReviewRow | None:
    return session.exec(select(ReviewRow).where(ReviewRow.attestation_uid == uid.lower())).first()


def proofs_for(session: Session, *, review_ids: Sequence[str]) -> dict[str, list[ProofRow]]:
    """Proof rows grouped by review id, in position order (one query)."""
    out: dict[str, list[ProofRow]] = {rid: [] for rid in review_ids}
    if not review_ids:
        return out
    stmt = select(ProofRow).where(col(ProofRow.review_id).in_(review_ids)).order_by(col(ProofRow.position))
    for row in session.exec(stmt):
        out[row.review_id].append(row)
    return out


def live_review_for(session: Session, *, attester: str, subject_normalized: str) -> ReviewRow | None:
    """The current (non-superseded) review by ``attester`` about ``subject_normalized``, if any."""
    stmt = select(ReviewRow).where(
        ReviewRow.attester == attester,
        ReviewRow.subject_normalized == subject_normalized,
        col(ReviewRow.superseded_by).is_(None),
    )
    return session.exec(stmt).first()


def claim_receipts(session: Session, *, replay_keys: Sequence[str], review: ReviewRow, superseding: str | None) -> None:
    """Record that ``review`` is backed by these receipts.

    A claim held by a review that is no longer live — or by the review being superseded right now (``superseding``)
    — is transferred.

    Raises:
        ReceiptAlreadyClaimed: a live review other than ``superseding`` holds one of the receipts.
    """
    for key in replay_keys:
        claim = session.get(ReceiptClaimRow, key, with_for_update=True)
        if claim is None:
            session.add(
                ReceiptClaimRow(
                    replay_key=key,
                    review_id=review.id,
                    attester=review.attester,
                    subject_normalized=review.subject_normalized,
                )
            )
            continue
        holder = session.get(ReviewRow, claim.review_id)
        holder_live = holder is not None and holder.superseded_by is None
        if claim_conflicts(holder=claim.review_id, holder_live=holder_live, review_id=review.id,
                           superseding=superseding):  # fmt: skip
            raise ReceiptAlreadyClaimed(key, claim.review_id)
        claim.review_id = review.id
        claim.attester = review.attester
        claim.subject_normalized = review.subject_normalized
        session.add(claim)


def claim_conflicts(*, holder: str, holder_live: bool, review_id: str, superseding: str | None) -> bool:
    """Whether a receipt's claim held by ``holder`` stops ``review_id`` from claiming it: only a live holder other
    than the review itself and the review it is superseding right now (whose claims it takes over)."""
    return holder_live and holder != superseding and holder != review_id


def receipt_holder(session: Session, *, replay_key: str) -> str | None:
    """The id of the live review a receipt backs, if any."""
    claim = session.get(ReceiptClaimRow, replay_key)
    if claim is None:
        return None
    holder = session.get(ReviewRow, claim.review_id)
    return claim.review_id if holder is not None and holder.superseded_by is None else None


def _encode_cursor(row: ReviewRow) -> str:
    raw = json.dumps([row.review_time, row.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Raises BadCursor on anything but a cursor this module produced."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError as exc:  # binascii.Error, JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadCursor() from exc
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], str)):
        raise BadCursor()
    if unstorable(value) is not None:  # e.g. 2**70 or a NUL: checked here, before it reaches SQL
        raise BadCursor()
    return value[0], value[1]


def list_reviews(
    session: Session,
    *,
    subject_normalized: str,
    verified: bool | None,
    include_superseded: bool,
    cursor: str | None,
    limit: int,
    evidence: str | None = None,
) -> Page:
    """Newest first, keyset-paginated on (review_time, id); ``evidence`` keeps one scoring evidence class.

    Raises:
        BadCursor: ``cursor`` is not one this module produced.
    """
    stmt = select(ReviewRow).where(ReviewRow.subject_normalized == subject_normalized)
    if verified is not None:
        stmt = stmt.where(ReviewRow.verified_purchase == verified)
    if evidence is not None:
        stmt = stmt.where(ReviewRow.evidence == evidence)
    if not include_superseded:
        stmt = stmt.where(col(ReviewRow.superseded_by).is_(None))
    if cursor:
        t, rid = decode_cursor(cursor)
        stmt = stmt.where(
            or_(col(ReviewRow.review_time) < t, and_(col(ReviewRow.review_time) == t, col(ReviewRow.id) < rid))
        )
    stmt = stmt.order_by(col(ReviewRow.review_time).desc(), col(ReviewRow.id).desc()).limit(limit + 1)
    rows = list(session.exec(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows=rows, next_cursor=_encode_cursor(rows[-1]) if more and rows else None)


def evidence_counts(session: Session, *, subject_normalized: str) -> dict[str, int]:
    """Live reviews of a subject per evidence class (for the page's filter)."""
    stmt = (
        select(ReviewRow.evidence, func.count())
        .where(ReviewRow.subject_normalized == subject_normalized, col(ReviewRow.superseded_by).is_(None))
        .group_by(ReviewRow.evidence)
    )
    return {str(evidence): int(n) for evidence, n in session.exec(stmt)}
