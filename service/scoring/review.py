"""The input of the scoring core: one review reduced to what the score needs."""

from __future__ import annotations

from dataclasses import dataclass

from service.domain import Reason
from service.errors import MalformedInput
from service.scoring.params import Evidence


@dataclass(frozen=True, slots=True)
class ScoredReview:
    """One review of one subject, as the score sees it.

    ``reviewer`` must already be normalized by the caller (lower-case attester address): one live review per
    (reviewer, subject) is the caller's contract — older ones are passed with ``superseded=True``.
    ``time`` is the attestation time (unix seconds).

    Raises:
        MalformedInput: INVALID_RATING for a rating outside the integers 1..5, INVALID_REVIEW for an empty id or
            reviewer, or a non-integer time.
    """

    review_id: str
    reviewer: str
    rating: int
    time: int
    evidence: Evidence
    superseded: bool = False
    attestation_uid: str | None = None

    def __post_init__(self) -> None:
        # bool is an int subclass; True must not pass as 2★-ish input.
        if isinstance(self.rating, bool) or not isinstance(self.rating, int) or not 1 <= self.rating <= 5:
            raise MalformedInput(Reason.INVALID_RATING, f"rating must be an integer 1..5, got {self.rating!r}")
        if isinstance(self.time, bool) or not isinstance(self.time, int):
            raise MalformedInput(Reason.INVALID_REVIEW, f"time must be integer unix seconds, got {self.time!r}")
        if not self.review_id or not self.reviewer:
            raise MalformedInput(Reason.INVALID_REVIEW, "review_id and reviewer must be non-empty")
        if not isinstance(self.evidence, Evidence):
            raise MalformedInput(Reason.INVALID_REVIEW, f"evidence must be an Evidence, got {self.evidence!r}")
