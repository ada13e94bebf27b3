"""Regularized incomplete beta function and its inverse, in pure Python (``math`` only).

``I_x(a, b)`` is evaluated with its continued fraction (DLMF 8.17.22) by the modified Lentz method, on whichever
side of the distribution the fraction converges fast (``x < (a+1)/(a+b+2)``, else via ``1 - I_{1-x}(b, a)``).
The inverse is a Newton iteration in logit space kept inside a shrinking bisection bracket, so it always ends.
Tests compare both with exact binomial sums and an independent quadrature.
"""

from __future__ import annotations

import math

_TINY = 1e-300
_EPS = 1e-15


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


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
    log_front = a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b)
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
    log_beta = _log_beta(a, b)
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
        log_slope = a * math.log(x) + b * math.log1p(-x) - log_beta if 0.0 < x < 1.0 else -math.inf
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
