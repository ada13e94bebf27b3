"""Regularized incomplete beta function and its inverse, in pure Python (``math`` only).

``I_x(a, b)`` is evaluated with its continued fraction (DLMF 8.17.22) by the modified Lentz method, on whichever
side of the distribution the fraction converges fast (``x < (a+1)/(a+b+2)``, else via ``1 - I_{1-x}(b, a)``).
The prefactor ``x^a (1-x)^b / B(a, b)`` is formed from a Stirling expansion so large a, b (popular subjects) do
not lose digits to ``lgamma`` cancellation. The inverse is a Newton iteration in logit space kept inside a
shrinking bisection bracket, so it always ends.
Tests compare both with exact binomial sums and an independent quadrature.
"""

from __future__ import annotations

import math

_TINY = 1e-300
_EPS = 1e-15


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
# Stirling series of lgamma(x) - ((x - 1/2)·log x - x + log(2π)/2): B_2k / (2k (2k-1) x^(2k-1)).
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156)


def _stirling_error(x: float) -> float:
    if x < 10.0:
        return math.lgamma(x) - ((x - 0.5) * math.log(x) - x + _HALF_LOG_2PI)
    inv2 = 1.0 / (x * x)
    return sum(c * inv2**k for k, c in enumerate(_STIRLING)) / x


def _log_front(a: float, b: float, x: float) -> float:
    """log(x^a (1-x)^b / B(a, b)), without the cancellation of lgamma(a) + lgamma(b) - lgamma(a+b) for large
    a, b: expanded with Stirling so the big terms cancel analytically and what is left is O(1)."""
    c = a + b
    d = x * b - (1.0 - x) * a  # = x·c - a, so x·c/a = 1 + d/a and (1-x)·c/b = 1 - d/b
    # log1p where the ratio is near 1 (the bulk, where precision matters); plain logs in the far tails.
    log_xca = math.log1p(d / a) if abs(d) < 0.5 * a else math.log(x) + math.log(c / a)
    log_ycb = math.log1p(-d / b) if abs(d) < 0.5 * b else math.log1p(-x) + math.log(c / b)
    return (
        a * log_xca
        + b * log_ycb
        + 0.5 * math.log(a / c * b)
        - _HALF_LOG_2PI
        - _stirling_error(a)
        - _stirling_error(b)
        + _stirling_error(c)
    )


def _continued_fraction(a: float, b: float, x: float) -> float:
    """1 / (1 + d1/(1 + d2/(1 + ...))) for I_x(a, b); converges fast for x < (a+1)/(a+b+2)."""
    # Enough for a + b up to ~1e8: the number of terms grows like sqrt(a·b/(a+b)).
    max_terms = 200_000
    f = 1.0
    c = 1.0
    d = 0.0
    for j in range(1, 2 * max_terms):
        k = j // 2
        if j % 2:  # odd: d_{2k+1}
            coef = -(a + k) * (a + b + k) * x / ((a + 2 * k) * (a + 2 * k + 1))
        else:  # even: d_{2k}
            coef = k * (b - k) * x / ((a + 2 * k - 1) * (a + 2 * k))
        d = 1.0 + coef * d
        if abs(d) < _TINY:
            d = _TINY
        c = 1.0 + coef / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = c * d
        f *= delta
        if abs(delta - 1.0) < _EPS:
            return 1.0 / f
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def _check_shape(a: float, b: float) -> None:
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"Beta parameters must be finite and > 0, got a={a!r}, b={b!r}")


def regularized_incomplete_beta(*, a: float, b: float, x: float) -> float:
    """I_x(a, b) = P(X ≤ x) for X ~ Beta(a, b).

    Raises:
        ValueError: a or b not finite and > 0, or x is NaN.
        ArithmeticError: the continued fraction did not converge (only for a + b far beyond 1e8).
    """
    _check_shape(a, b)
    if math.isnan(x):
        raise ValueError("x is NaN")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = _log_front(a, b, x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _continued_fraction(b, a, 1.0 - x) / b


def _expit(y: float) -> float:
    if y >= 0.0:
        return 1.0 / (1.0 + math.exp(-y))
    e = math.exp(y)
    return e / (1.0 + e)


def beta_quantile(*, a: float, b: float, p: float) -> float:
    """The x in [0, 1] with I_x(a, b) = p (the p-quantile of Beta(a, b)).

    Raises:
        ValueError: a or b not finite and > 0, or p outside [0, 1].
        ArithmeticError: see :func:`regularized_incomplete_beta`.
    """
    _check_shape(a, b)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if p == 0.0:
        return 0.0
    if p == 1.0:
        return 1.0
    # Solve in logit space, y = log(x / (1 - x)): tails that are power laws in x (a or b < 1) become close to
    # linear there, so Newton behaves, and bisection over [-745, 745] reaches any double in ~60 halvings.
    lo, hi = -745.0, 745.0
    y = math.log(a) - math.log(b)  # logit of the mean: a good start
    x = _expit(y)
    for _ in range(200):
        err = regularized_incomplete_beta(a=a, b=b, x=x) - p
        if err == 0.0:
            return x
        if err < 0.0:  # I increases with y: keep [lo, hi] bracketing the root
            lo = y
        else:
            hi = y
        # dI/dy = density(x) · x · (1 - x)
        log_slope = _log_front(a, b, x) if 0.0 < x < 1.0 else -math.inf
        slope = math.exp(log_slope)
        step = err / slope if slope > 0.0 else math.inf
        if abs(step) <= 1e-14 * max(1.0, abs(y)):
            return _expit(y - step)  # Newton has converged (checked first: a tiny step may not move y at all)
        candidate = y - step
        if not (lo < candidate < hi):
            candidate = 0.5 * (lo + hi)  # Newton left the bracket (or the slope vanished): bisect
            if hi - lo <= 1e-14 * max(1.0, abs(lo), abs(hi)):
                return _expit(candidate)
        y = candidate
        x = _expit(y)
    return x
