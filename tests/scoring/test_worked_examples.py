"""Worked examples: expected values derived by hand from the formulas (exact rationals), lower90 from an
independent quadrature, and the table in docs/scoring.md checked against both."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from service.scoring import (
    DEFAULT_PARAMS,
    V1_PARAMS,
    Evidence,
    ScoredReview,
    ScoringParams,
    TrustScore,
    aggregate_reviews,
    score_from_aggregate,
    score_reviews,
    select_candidates,
)
from tests.scoring.reference import beta_quantile_reference

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
F = Fraction  # short name for the exact arithmetic below
PRIOR = F(7, 10)
M = F(4)
V, NONE, PAID = Evidence.VERIFIED, Evidence.NONE, Evidence.PAYMENT_BACKED
DOC = Path(__file__).resolve().parents[2] / "docs" / "scoring.md"


def review(
    i: int, rating: int, evidence: Evidence, *, time: int = NOW, reviewer: str = "", superseded: bool = False
) -> ScoredReview:
    return ScoredReview(
        review_id=f"r{i:03d}",
        reviewer=reviewer or f"0x{i:040x}",
        rating=rating,
        time=time,
        evidence=evidence,
        superseded=superseded,
    )


def r(stars: int) -> F:
    return F(stars - 1, 4)


@dataclass(frozen=True)
class Expected:
    alpha: F
    beta: F
    n: F
    live: int
    verified: int
    superseded: int

    @property
    def score(self) -> float:
        return float(100 * self.alpha / (self.alpha + self.beta))

    @property
    def confidence(self) -> float:
        return float(self.n / (M + self.n))


def _hand_computed() -> dict[int, tuple[list[ScoredReview], Expected]]:
    """Each expected value written out from the model (docs/scoring.md), not from the code."""
    examples: dict[int, tuple[list[ScoredReview], Expected]] = {}
    # 1. No reviews: the prior alone.
    examples[1] = ([], Expected(alpha=M * PRIOR, beta=M * (1 - PRIOR), n=F(0), live=0, verified=0, superseded=0))
    # 2. 3 verified 5★ at age 0: weight 1 each; mean = (m·μ₀ + 3·1)/(m + 3).
    examples[2] = (
        [review(i, 5, V) for i in range(3)],
        Expected(alpha=M * PRIOR + 3, beta=M * (1 - PRIOR), n=F(3), live=3, verified=3, superseded=0),
    )
    # 3. 50 no-proof 5★: U = 50·¼ = 12.5, V = 0 → cap = u_min·U/N_u = 2·¼ = ½, s = ½/12.5.
    u, cap = 50 * F(1, 4), 2 * F(1, 4)
    examples[3] = (
        [review(i, 5, NONE) for i in range(50)],
        Expected(alpha=M * PRIOR + cap * 1, beta=M * (1 - PRIOR), n=cap, live=50, verified=0, superseded=0),
    )
    assert u > cap
    # 4. Bombing: 5 verified 4★ + 5 verified 5★ (V = 10, Σw·r = 5·¾ + 5) + 30 no-proof 1★ (U = 7.5);
    #    κ_eff = min(¼, 0.3/0.7) = ¼ → cap = max(¼·10, 2·¼) = 2.5 < 7.5: the crowd weighs 2.5, all at r = 0.
    kappa = min(F(1, 4), (1 - PRIOR) / PRIOR)
    cap = max(kappa * 10, 2 * F(1, 4))
    assert cap == F(5, 2)
    examples[4] = (
        [review(i, 4, V) for i in range(5)]
        + [review(i, 5, V) for i in range(5, 10)]
        + [review(i, 1, NONE) for i in range(10, 40)],
        Expected(
            alpha=M * PRIOR + 5 * r(4) + 5 * r(5),
            beta=M * (1 - PRIOR) + 5 * (1 - r(4)) + cap * 1,
            n=10 + cap,
            live=40,
            verified=10,
            superseded=0,
        ),
    )
    # 5. One reviewer, 40 no-proof 1★ reviews a day apart; only the latest (age 0) is live: U = ¼, N_u = 1,
    #    floor = 2·¼ ≥ U → no cap.
    examples[5] = (
        [review(i, 1, NONE, time=NOW - (39 - i) * DAY, reviewer="0xspam", superseded=i < 39) for i in range(40)],
        Expected(alpha=M * PRIOR, beta=M * (1 - PRIOR) + F(1, 4), n=F(1, 4), live=1, verified=0, superseded=39),
    )
    # 6. Example 2 one half-life (180 days) later: each weight is exactly ½.
    examples[6] = (
        [review(i, 5, V, time=NOW - 180 * DAY) for i in range(3)],
        Expected(alpha=M * PRIOR + 3 * F(1, 2), beta=M * (1 - PRIOR), n=F(3, 2), live=3, verified=3, superseded=0),
    )
    # 7 (v2). 3 payment-backed 5★ at age 0: λ = 1.5 each, never capped; mean = (m·μ₀ + 3·1.5)/(m + 4.5).
    examples[7] = (
        [review(i, 5, PAID) for i in range(3)],
        Expected(alpha=M * PRIOR + F(9, 2), beta=M * (1 - PRIOR), n=F(9, 2), live=3, verified=3, superseded=0),
    )
    return examples


EXAMPLES = _hand_computed()
# Examples 1–6 have no payment-backed or tx-interaction reviews: v1 and v2 give them the same numbers.
V2_ONLY = {7}
CASES = [(n, p) for n in sorted(EXAMPLES) for p in (V1_PARAMS, DEFAULT_PARAMS)
         if n not in V2_ONLY or p is DEFAULT_PARAMS]  # fmt: skip


def _doc_table() -> dict[int, tuple[float, float, float, float]]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- worked-examples")[1].split("<!-- /worked-examples -->")[0]
    rows: dict[int, tuple[float, float, float, float]] = {}
    for line in block.splitlines():
        m = re.match(r"^\| (\d+) \|[^|]+\| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", line)
        if m:
            rows[int(m[1])] = (float(m[2]), float(m[3]), float(m[4]), float(m[5]))
    return rows


def _both_paths(reviews: list[ScoredReview], params: ScoringParams = DEFAULT_PARAMS) -> tuple[TrustScore, TrustScore]:
    full = score_reviews(reviews=reviews, params=params, now=NOW, prior_mean=float(PRIOR))
    agg = score_from_aggregate(
        agg=aggregate_reviews(reviews=reviews, params=params),
        params=params,
        now=NOW,
        prior_mean=float(PRIOR),
        candidates=select_candidates(reviews=reviews, params=params),
    )
    return full, agg


@pytest.mark.parametrize(("number", "params"), CASES, ids=[f"{n}-{p.version}" for n, p in CASES])
def test_worked_example(number: int, params: ScoringParams) -> None:
    reviews, exp = EXAMPLES[number]
    lower90 = 100 * beta_quantile_reference(a=float(exp.alpha), b=float(exp.beta), p=0.1)
    for result in _both_paths(reviews, params):
        assert result.score == pytest.approx(exp.score, rel=1e-12)
        assert result.confidence == pytest.approx(exp.confidence, rel=1e-12, abs=1e-15)
        assert result.effective_evidence == pytest.approx(float(exp.n), rel=1e-12, abs=1e-15)
        assert result.lower90 == pytest.approx(lower90, abs=1e-7)
        assert result.lower90 <= result.score
        assert result.counts.live == exp.live
        assert result.counts.verified == exp.verified
        assert result.counts.superseded == exp.superseded
        assert result.counts.total == len(reviews)
        assert result.params_version == params.version


def test_doc_table_matches_hand_computed_values() -> None:
    table = _doc_table()
    assert sorted(table) == sorted(EXAMPLES)
    for number, (score, lower90, confidence, n) in table.items():
        _, exp = EXAMPLES[number]
        assert score == round(exp.score, 2), number
        assert lower90 == round(100 * beta_quantile_reference(a=float(exp.alpha), b=float(exp.beta), p=0.1), 2)
        assert confidence == round(exp.confidence, 4), number
        assert n == round(float(exp.n), 4), number


def test_example_details() -> None:
    # 2: three equal reviewers share the weight; none dominates.
    full, _ = _both_paths(EXAMPLES[2][0])
    assert full.top_reviewer_share == pytest.approx(1 / 3)
    assert not full.reviewer_dominates
    assert full.histogram_verified == (0, 0, 0, 0, 3)
    assert full.verified_share == 1.0
    # 3: the flood is scaled to s = 0.5/12.5.
    full, agg = _both_paths(EXAMPLES[3][0])
    assert full.unverified_cap_scale == pytest.approx(0.04)
    assert agg.unverified_cap_scale == pytest.approx(0.04)
    assert full.histogram_unverified == (0, 0, 0, 0, 50)
    assert full.verified_share == 0.0
    # 4: bombing costs exactly the capped amount versus the verified reviews alone.
    without_flood = score_reviews(reviews=EXAMPLES[4][0][:10], params=DEFAULT_PARAMS, now=NOW, prior_mean=0.7)
    assert without_flood.score == pytest.approx(float(100 * (M * PRIOR + F(35, 4)) / (M + 10)))
    full, _ = _both_paths(EXAMPLES[4][0])
    assert full.histogram_verified == (0, 0, 0, 5, 5)
    assert full.histogram_unverified == (30, 0, 0, 0, 0)
    assert full.verified_share == pytest.approx(10 / 12.5)
    # The 5★ reviews pull up, and they are the largest |contribution|s: 100·1·(1 − 0.7)/16.5 each.
    assert [m.review_id for m in full.top_movers] == ["r005", "r006", "r007", "r008", "r009"]
    assert full.top_movers[0].contribution == pytest.approx(100 * 0.3 / 16.5)
    # 5: one live review, 39 superseded; the live one is the latest; a single reviewer is not "dominating".
    full, agg = _both_paths(EXAMPLES[5][0])
    for result in (full, agg):
        assert result.top_reviewer_share == pytest.approx(1.0)
        assert not result.reviewer_dominates
        assert result.last_review_at == NOW
        assert [m.review_id for m in result.top_movers] == ["r039"]


def test_payment_backed_weight_and_top_payer_share() -> None:
    # 7: three payers share the payment-backed weight equally, on both paths.
    for result in _both_paths(EXAMPLES[7][0]):
        assert result.payment_backed_weight == pytest.approx(4.5)
        assert result.top_payer_share == pytest.approx(1 / 3)
        assert result.histogram_verified == (0, 0, 0, 0, 3)
    # One wallet paying for most of the payment-backed weight shows, even among other reviews.
    one_wallet = [review(0, 5, PAID, reviewer="0xmerchant"), review(1, 5, PAID, time=NOW - 360 * DAY),
                  review(2, 4, V), review(3, 3, NONE)]  # fmt: skip
    for result in _both_paths(one_wallet):
        assert result.payment_backed_weight == pytest.approx(1.5 + 1.5 / 4)
        assert result.top_payer_share == pytest.approx(1.5 / (1.5 + 1.5 / 4))
    # No payment-backed review: no share, zero weight.
    full, agg = _both_paths(EXAMPLES[2][0])
    assert (full.top_payer_share, agg.top_payer_share, full.payment_backed_weight) == (None, None, 0.0)


def test_wire_form_is_json_ready() -> None:
    full, _ = _both_paths(EXAMPLES[4][0])
    wire = json.loads(json.dumps(full.to_wire()))
    assert wire["paramsVersion"] == DEFAULT_PARAMS.version
    assert (wire["paymentBackedWeight"], wire["topPayerShare"]) == (0.0, None)
    assert wire["counts"] == {"total": 40, "live": 40, "verified": 10, "unverified": 30, "superseded": 0}
    assert wire["histogram"] == {"verified": [0, 0, 0, 5, 5], "unverified": [30, 0, 0, 0, 0]}
    assert wire["lastReviewAt"] == NOW
    assert wire["topMovers"][0]["reviewId"] == "r005"
    assert wire["topMovers"][0]["evidence"] == "verified"
    assert set(wire) >= {"score", "lower90", "confidence", "effectiveEvidence", "verifiedShare", "topReviewerShare",
                         "reviewerDominates", "unverifiedCapScale", "priorMean", "asOf"}
