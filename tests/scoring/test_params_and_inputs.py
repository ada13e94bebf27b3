"""The parameter set and the input type refuse what the score's guarantees do not cover."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from service.domain import Reason
from service.errors import MalformedInput
from service.scoring import DEFAULT_PARAMS, V1_PARAMS, Evidence, ScoredReview, ScoringParams, rating_to_unit


def test_v1_values() -> None:
    p = V1_PARAMS
    assert p.version == "v1"
    assert [p.weight(e) for e in Evidence][:4] == [1.0, 0.25, 0.5, 0.25]  # verified, unauthorized, offer-only, none


def test_v2_values_order_the_evidence_ladder() -> None:
    p = DEFAULT_PARAMS
    assert p.version == "v2"
    ladder = [Evidence.PAYMENT_BACKED, Evidence.VERIFIED, Evidence.TX_INTERACTION, Evidence.OFFER_ONLY,
              Evidence.UNAUTHORIZED]  # fmt: skip
    weights = [p.weight(e) for e in ladder]
    assert weights == [1.5, 1.0, 0.75, 0.5, 0.25]
    assert p.weight(Evidence.NONE) == 0.25
    # Everything but the evidence weights is the same as v1: stored aggregates stay in the same units.
    assert dataclasses.replace(V1_PARAMS, version="v2", weight_payment_backed=1.5, weight_tx_interaction=0.75) == p
    assert p.half_life_seconds == 180 * 86_400
    assert (p.prior_strength, p.prior_mean_fallback) == (4.0, 0.7)
    assert (p.unverified_cap_ratio, p.unverified_floor_reviews) == (0.25, 2.0)
    assert p.lower_quantile == 0.10
    assert p.decay_epoch == 1_577_836_800  # 2020-01-01T00:00:00Z
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.version = "v2"  # type: ignore[misc]


def test_rating_map() -> None:
    assert [rating_to_unit(r) for r in range(1, 6)] == [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": ""}, "version"),
        ({"weight_verified": 0.0}, "weight_verified"),
        ({"weight_none": 1.5}, "weight_none"),
        ({"weight_offer_only": -0.1}, "weight_offer_only"),
        ({"weight_payment_backed": 0.9}, "weight_payment_backed"),
        ({"weight_tx_interaction": 1.1}, "weight_tx_interaction"),
        ({"half_life_seconds": 3600}, "one day"),
        ({"prior_mean_min": 0.0}, "prior_mean_min"),
        ({"prior_mean_fallback": 0.99}, "prior_mean_fallback"),
        ({"prior_strength": 0.5}, "prior_strength"),
        ({"lower_quantile": 0.2}, "lower_quantile"),
        ({"unverified_cap_ratio": -1.0}, "unverified_cap_ratio"),
        ({"unverified_floor_reviews": float("nan")}, "unverified_floor_reviews"),
        ({"dominance_share": 1.0}, "dominance_share"),
        ({"max_movers": 6}, "max_movers"),
    ],
)
def test_params_validation(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(DEFAULT_PARAMS, **change)


def test_prior_mean_bounds() -> None:
    DEFAULT_PARAMS.check_prior_mean(0.05)
    DEFAULT_PARAMS.check_prior_mean(0.95)
    for bad in (0.0, 0.01, 0.96, 1.0):
        with pytest.raises(ValueError, match="global_prior_mean"):
            DEFAULT_PARAMS.check_prior_mean(bad)


def test_a_custom_set_is_its_own_version() -> None:
    custom = ScoringParams(version="v1-strict", unverified_cap_ratio=0.1)
    assert custom != DEFAULT_PARAMS
    assert custom.weight(Evidence.VERIFIED) == 1.0


def _review(**change: Any) -> ScoredReview:
    fields: dict[str, Any] = {
        "review_id": "r1", "reviewer": "0xabc", "rating": 4, "time": 1_767_225_600, "evidence": Evidence.VERIFIED,
    }
    return ScoredReview(**(fields | change))


@pytest.mark.parametrize("rating", [0, 6, -1, True, 4.5, "5"])
def test_rating_must_be_an_integer_one_to_five(rating: Any) -> None:
    with pytest.raises(MalformedInput) as err:
        _review(rating=rating)
    assert err.value.reason is Reason.INVALID_RATING


@pytest.mark.parametrize(
    "change", [{"review_id": ""}, {"reviewer": ""}, {"time": 1.5}, {"time": False}, {"evidence": "verified"}]
)
def test_review_fields_are_checked(change: dict[str, Any]) -> None:
    with pytest.raises(MalformedInput) as err:
        _review(**change)
    assert err.value.reason is Reason.INVALID_REVIEW


def test_a_valid_review() -> None:
    review = _review(attestation_uid="0x" + "ab" * 32)
    assert review.superseded is False
    assert review.rating == 4
