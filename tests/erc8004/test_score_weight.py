"""ERC-8004 feedback in the score only through ``ScoringParams.erc8004_weight`` (docs/scoring.md): off by default
(v1/v2 scores unchanged, nothing read), a versioned parameter when on, and then each client's payment-verified
rating counts with that weight as its own stream — by the exact path, the aggregate path and the workflow alike."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from service.scoring import (
    DEFAULT_PARAMS,
    V1_PARAMS,
    Evidence,
    ScoredReview,
    ScoringParams,
    aggregate_reviews,
    score_from_aggregate,
    score_reviews,
)
from service.store.engine import make_engine, session_scope
from service.store.migrate import upgrade
from service.store.tables import Erc8004FeedbackRow, Erc8004ServiceRow
from service.workflows.erc8004_reputation import score_stream, service_feedback
from service.workflows.ranking import ranking
from service.workflows.reputation import DbContext, reputation
from tests.api.test_reputation_store import insert_review
from tests.support.db import fresh_database_url

NOW = 1_767_225_600
ON = ScoringParams(version="v2-erc8004", erc8004_weight=0.5)
SERVICE = "did:web:scored.example.com"


def _reviews() -> list[ScoredReview]:
    return [
        ScoredReview(review_id=f"r{i}", reviewer=f"0x{i:040x}", rating=rating, time=NOW - 86_400 * i,
                     evidence=evidence, superseded=False, attestation_uid=None)
        for i, (rating, evidence) in enumerate([(5, Evidence.VERIFIED), (2, Evidence.PAYMENT_BACKED),
                                                (1, Evidence.NONE), (4, Evidence.OFFER_ONLY)])
    ]  # fmt: skip


def test_the_weight_is_a_versioned_parameter_off_by_default() -> None:
    assert DEFAULT_PARAMS.erc8004_weight == V1_PARAMS.erc8004_weight == 0.0
    with pytest.raises(ValueError, match="name a version other than 'v2'"):
        dataclasses.replace(DEFAULT_PARAMS, erc8004_weight=0.5)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="erc8004_weight must be in"):
            ScoringParams(version="v2-erc8004", erc8004_weight=bad)
    assert ON.erc8004_weight == 0.5


def test_off_means_the_stream_changes_nothing() -> None:
    reviews = _reviews()
    for params in (DEFAULT_PARAMS, V1_PARAMS):
        plain = score_reviews(reviews=reviews, params=params, now=NOW, prior_mean=0.7)
        with_stream = score_reviews(reviews=reviews, params=params, now=NOW, prior_mean=0.7, erc8004=(1.0, 0.0, 1.0))
        assert with_stream == plain
        assert plain.erc8004_weight == 0.0


def test_on_each_rating_counts_with_the_weight_by_both_paths() -> None:
    # no reviews: α = 4·0.7 + 0.5·(1 + 1 + 0.25), β = 4·0.3 + 0.5·(0 + 0 + 0.75)
    alone = score_reviews(reviews=[], params=ON, now=NOW, prior_mean=0.7, erc8004=(1.0, 1.0, 0.25))
    alpha, beta = 2.8 + 1.125, 1.2 + 0.375
    assert alone.score == pytest.approx(100 * alpha / (alpha + beta))
    assert (alone.effective_evidence, alone.erc8004_weight) == (pytest.approx(1.5), pytest.approx(1.5))
    assert alone.confidence == pytest.approx(1.5 / 5.5)
    assert alone.verified_share == 0.0  # the stream is not a verified purchase
    reviews = _reviews()
    units = (0.0, 0.75)
    exact = score_reviews(reviews=reviews, params=ON, now=NOW, prior_mean=0.7, erc8004=units)
    agg = aggregate_reviews(reviews=reviews, params=ON)
    fast = score_from_aggregate(agg=agg, params=ON, now=NOW, prior_mean=0.7, erc8004=units)
    assert fast.score == pytest.approx(exact.score, rel=1e-9)
    assert fast.lower90 == pytest.approx(exact.lower90, rel=1e-9)
    plain = score_reviews(reviews=reviews, params=ON, now=NOW, prior_mean=0.7)
    assert exact.score < plain.score  # a 1★-equivalent and a 4★-equivalent pull a 72-ish score down
    assert exact.effective_evidence == pytest.approx(plain.effective_evidence + 1.0)
    with pytest.raises(ValueError, match="units must be in"):
        score_reviews(reviews=[], params=ON, now=NOW, prior_mean=0.7, erc8004=(1.5,))


def _feedback(client: str, *, value: int, status: str = "payment-verified", index: int = 1, block: int = 10,
              revoked: int | None = None) -> Erc8004FeedbackRow:  # fmt: skip
    return Erc8004FeedbackRow(
        chain_id=8453, registry_address="0x" + "22" * 20, agent_id="7", client=client, feedback_index=index,
        value=str(value), value_decimals=0, tag1="starred", feedback_hash="0x" + "00" * 32, block_number=block,
        block_hash="0x" + "aa" * 32, tx_hash="0x" + "bb" * 32, log_index=index, status=status, revoked_block=revoked,
        seen_at=1,
    )  # fmt: skip


def test_the_reputation_workflow_uses_the_stream_only_when_on(tmp_path: Path) -> None:
    with fresh_database_url(tmp_path) as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        a, b, c = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20
        with session_scope(engine) as session:
            session.add(Erc8004ServiceRow(did_normalized=SERVICE, chain_id=8453, registry_address="0x" + "22" * 20,
                                          agent_id="7"))  # fmt: skip
            session.add_all([
                _feedback(a, value=20), _feedback(a, value=100, index=2, block=12),  # a: the latest one counts
                _feedback(b, value=50, status="unverified"),  # not payment-verified: shown, not scored
                _feedback(c, value=0, revoked=11),  # revoked
            ])  # fmt: skip
        assert score_stream(engine=engine, did=SERVICE, params=DEFAULT_PARAMS) == ()
        assert score_stream(engine=engine, did=SERVICE, params=ON) == (1.0,)
        off = reputation(rt=DbContext(engine=engine, clock=lambda: NOW), did=SERVICE)
        on = reputation(rt=DbContext(engine=engine, clock=lambda: NOW, params=ON), did=SERVICE)
        explained = reputation(rt=DbContext(engine=engine, clock=lambda: NOW, params=ON), did=SERVICE, explain=True)
        prior = off.score.prior_mean
        assert off.score.score == pytest.approx(100 * prior)  # no reviews: the prior
        assert on.score.score == pytest.approx(100 * (4 * prior + 0.5) / 4.5)
        assert explained.score.score == pytest.approx(on.score.score)
        assert on.score.params_version == "v2-erc8004"
        # with a review, the ranking scores the service with the stream as the reputation does
        insert_review(engine, rid="rv1", subject=SERVICE, attester="0x" + "d4" * 20, rating=5, time=NOW - 60,
                      evidence="verified")  # fmt: skip
        ctx_on = DbContext(engine=engine, clock=lambda: NOW, params=ON)
        (ranked,) = ranking(rt=ctx_on).items
        (ranked_off,) = ranking(rt=DbContext(engine=engine, clock=lambda: NOW)).items
        assert ranked.score.score == pytest.approx(reputation(rt=ctx_on, did=SERVICE).score.score)
        assert ranked.score.erc8004_weight == pytest.approx(0.5)
        assert ranked_off.score.erc8004_weight == 0.0
        assert ranked.score.score != pytest.approx(ranked_off.score.score)
        section = service_feedback(engine=engine, did=SERVICE, erc8004_weight=ON.erc8004_weight)
        assert section is not None
        assert (section["inScore"], section["scored"], section["count"], section["paymentVerified"]) == (True, 1, 3, 2)
        default = service_feedback(engine=engine, did=SERVICE)
        assert default is not None
        assert (default["inScore"], default["scored"]) == (False, 0)
        engine.dispose()
