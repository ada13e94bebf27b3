"""Score over time of one service, rebuilt from its stored reviews (for the page's sparkline).

No score is stored per day: the reviews table is the history. The score at a past time ``t`` is the exact score of
the reviews written up to ``t``, each reviewer's newest one live (the one-live-review-per-reviewer rule as it stood
at ``t``), scored with the current prior. Cost: O(points × reviews of the subject) — bounded by ``max_reviews``
(the newest reviews only beyond that, which the page says).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.dids import normalize_did
from service.scoring import DEFAULT_PARAMS, Evidence, ScoredReview, ScoringParams, score_reviews
from service.store.engine import session_scope
from service.store.scoring_queries import ReviewFacts, subject_reviews
from service.workflows.reputation import ScoreContext

_KNOWN = {e.value for e in Evidence}


@dataclass(frozen=True, slots=True)
class ScorePoint:
    at: int
    score: float
    lower90: float
    reviews: int


def _live_at(facts: list[ReviewFacts], t: int) -> list[ScoredReview]:
    newest: dict[str, ReviewFacts] = {}
    upto = [f for f in facts if f.review_time <= t and f.evidence in _KNOWN]
    for f in upto:  # facts are in (review_time, id) order: the last one seen per reviewer is the live one
        newest[f.attester] = f
    live = {f.id for f in newest.values()}
    return [
        ScoredReview(
            review_id=f.id,
            reviewer=f.attester,
            rating=f.rating_value,
            time=f.review_time,
            evidence=Evidence(f.evidence),
            superseded=f.id not in live,
            attestation_uid=f.attestation_uid,
        )
        for f in upto
    ]


def score_history(
    *,
    rt: ScoreContext,
    did: str,
    prior_mean: float,
    points: int = 24,
    max_reviews: int = 2000,
    params: ScoringParams = DEFAULT_PARAMS,
) -> tuple[ScorePoint, ...]:
    """``points`` evenly spaced scores from the first review to now (empty without reviews).

    Raises:
        ValueError: ``points`` < 2, or a prior outside the params' bounds.
    """
    if points < 2:
        raise ValueError("points must be at least 2")
    with session_scope(rt.engine) as session:
        facts = subject_reviews(session, subject_normalized=normalize_did(did))
    facts = facts[-max_reviews:]
    if not facts:
        return ()
    now = int(rt.clock())
    start = facts[0].review_time
    step = max(now - start, 1) / (points - 1)
    out = []
    for i in range(points):
        t = now if i == points - 1 else int(start + i * step)
        live = _live_at(facts, t)
        s = score_reviews(reviews=live, params=params, now=t, prior_mean=prior_mean)
        out.append(ScorePoint(at=t, score=s.score, lower90=s.lower90, reviews=s.counts.live))
    return tuple(out)
