"""The pure-Python incomplete beta and its inverse against independent references."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.scoring.beta import beta_quantile, regularized_incomplete_beta
from tests.scoring.reference import beta_cdf_exact, beta_cdf_quadrature, beta_quantile_reference


@pytest.mark.parametrize("a", [1, 2, 3, 7, 12, 40])
@pytest.mark.parametrize("b", [1, 2, 5, 9, 31])
@pytest.mark.parametrize("x", [Fraction(1, 1000), Fraction(1, 10), Fraction(1, 3), Fraction(1, 2), Fraction(9, 10)])
def test_integer_shapes_match_exact_binomial_sum(a: int, b: int, x: Fraction) -> None:
    exact = float(beta_cdf_exact(a=a, b=b, x=x))
    assert regularized_incomplete_beta(a=a, b=b, x=float(x)) == pytest.approx(exact, rel=1e-12, abs=1e-15)


@given(a=st.floats(0.05, 50), x=st.floats(0.0, 1.0))
def test_closed_forms(a: float, x: float) -> None:
    assert regularized_incomplete_beta(a=a, b=1.0, x=x) == pytest.approx(x**a, rel=1e-11, abs=1e-14)
    assert regularized_incomplete_beta(a=1.0, b=a, x=x) == pytest.approx(1 - (1 - x) ** a, rel=1e-11, abs=1e-14)


@given(a=st.floats(0.05, 1e4), b=st.floats(0.05, 1e4), x=st.floats(0.001, 0.999))
@settings(max_examples=150)
def test_symmetry_and_quadrature(a: float, b: float, x: float) -> None:
    value = regularized_incomplete_beta(a=a, b=b, x=x)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(1 - regularized_incomplete_beta(a=b, b=a, x=1 - x), abs=1e-11)
    assert value == pytest.approx(beta_cdf_quadrature(a=a, b=b, x=x), abs=1e-9)


@given(a=st.floats(0.05, 1e5), b=st.floats(0.05, 1e5), p=st.sampled_from([0.01, 0.1, 0.5, 0.9]))
@settings(max_examples=200)
def test_quantile_inverts(a: float, b: float, p: float) -> None:
    q = beta_quantile(a=a, b=b, p=p)
    assert 0.0 <= q <= 1.0
    # q is the p-quantile to within a few ulps, judged by the independent quadrature. (Near 0 or 1 the CDF can
    # jump by more than 1e-9 between neighbouring doubles, so "CDF(q) ≈ p" alone would be too strict.)
    step = 4 * math.ulp(q)
    assert beta_cdf_quadrature(a=a, b=b, x=q - step) <= p + 1e-9
    assert beta_cdf_quadrature(a=a, b=b, x=q + step) >= p - 1e-9
    if 1e-6 < q < 1 - 1e-6:
        assert beta_cdf_quadrature(a=a, b=b, x=q) == pytest.approx(p, abs=1e-9)


@pytest.mark.parametrize(("a", "b"), [(2.8, 1.2), (5.8, 1.2), (0.2, 3.8), (3.8, 0.2), (400.5, 120.25), (0.05, 0.05)])
def test_tenth_percentile_against_bisection_reference(a: float, b: float) -> None:
    assert beta_quantile(a=a, b=b, p=0.1) == pytest.approx(beta_quantile_reference(a=a, b=b, p=0.1), abs=1e-11)


def test_quantile_is_monotone_in_p() -> None:
    qs = [beta_quantile(a=3.3, b=1.2, p=p / 100) for p in range(0, 101)]
    assert qs == sorted(qs)
    assert qs[0] == 0.0
    assert qs[-1] == 1.0


def test_scipy_agrees() -> None:
    from scipy import special  # test-only reference implementation (test extras)

    for a, b in [(2.8, 1.2), (11.55, 4.95), (0.07, 900.0), (3e4, 2e4)]:
        assert beta_quantile(a=a, b=b, p=0.1) == pytest.approx(float(special.betaincinv(a, b, 0.1)), rel=1e-10)


def test_large_shapes_are_fast_enough() -> None:
    # A subject with ~a million effective reviews still resolves (the continued fraction grows like sqrt(n)).
    q = beta_quantile(a=0.7e6 + 2.8, b=0.3e6 + 1.2, p=0.1)
    mean, sd = 0.7, math.sqrt(0.7 * 0.3 / 1e6)
    assert q == pytest.approx(mean - 1.2815515655446004 * sd, abs=1e-6)  # normal approximation, z_0.9


@pytest.mark.parametrize(
    "kwargs",
    [
        {"a": 0.0, "b": 1.0, "x": 0.5},
        {"a": 1.0, "b": -1.0, "x": 0.5},
        {"a": math.inf, "b": 1.0, "x": 0.5},
        {"a": 1.0, "b": 1.0, "x": math.nan},
    ],
)
def test_bad_shapes_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"Beta parameters|NaN"):
        regularized_incomplete_beta(**kwargs)


def test_bad_probability_raises() -> None:
    with pytest.raises(ValueError, match="p must be"):
        beta_quantile(a=1.0, b=1.0, p=1.5)
