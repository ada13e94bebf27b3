"""Hypothesis strategies for review histories (one live review per reviewer, optional superseded ones)."""

from __future__ import annotations

from hypothesis import strategies as st

from service.scoring import Evidence, ScoredReview

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
MAX_AGE = 6 * 365 * DAY

ratings = st.integers(1, 5)
evidences = st.sampled_from(list(Evidence))
ages = st.integers(0, MAX_AGE)
priors = st.floats(0.05, 0.95)


@st.composite
def histories(draw: st.DrawFn, *, max_live: int = 30, max_superseded: int = 10) -> list[ScoredReview]:
    """Live reviews by distinct reviewers, plus superseded older reviews by some of them; all at or before NOW."""
    live_specs = draw(st.lists(st.tuples(ratings, evidences, ages), max_size=max_live))
    reviews = [
        ScoredReview(
            review_id=f"live-{i}",
            reviewer=f"0x{i:040x}",
            rating=rating,
            time=NOW - age,
            evidence=evidence,
        )
        for i, (rating, evidence, age) in enumerate(live_specs)
    ]
    if reviews:
        old_specs = draw(
            st.lists(
                st.tuples(st.integers(0, len(reviews) - 1), ratings, evidences, st.integers(0, 365 * DAY)),
                max_size=max_superseded,
            )
        )
        for j, (owner, rating, evidence, older_by) in enumerate(old_specs):
            live = reviews[owner]
            reviews.append(
                ScoredReview(
                    review_id=f"old-{j}",
                    reviewer=live.reviewer,
                    rating=rating,
                    time=max(0, live.time - older_by),
                    evidence=evidence,
                    superseded=True,
                )
            )
    return reviews
