"""The review policy: the knobs of the rules that are ours to choose (the wire formats leave them open)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    """Receipt freshness: a receipt binds a review made at most ``receipt_max_age`` seconds after its
    ``issuedAt`` (and not before it, give or take ``clock_skew``)."""

    receipt_max_age: int = 30 * 24 * 3600
    clock_skew: int = 300
