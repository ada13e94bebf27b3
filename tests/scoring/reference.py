"""Independent references for the scoring tests (nothing here calls service.scoring).

- ``beta_cdf_exact``: the binomial-sum identity for integer a, b, in exact rational arithmetic.
- ``beta_cdf_quadrature``: tanh-sinh (double-exponential) quadrature of the Beta density — it tolerates the
  endpoint singularities of a < 1 or b < 1 — a method unrelated to the continued fraction under test.
- ``beta_quantile_reference``: plain bisection on the quadrature CDF.
"""

from __future__ import annotations

import math
from fractions import Fraction


def beta_cdf_exact(*, a: int, b: int, x: Fraction) -> Fraction:
    """I_x(a, b) = Σ_{j=a}^{a+b-1} C(a+b-1, j) x^j (1-x)^(a+b-1-j) for positive integers a, b."""
    n = a + b - 1
    return sum((math.comb(n, j) * x**j * (1 - x) ** (n - j) for j in range(a, n + 1)), Fraction(0))


def _tanh_sinh(*, a: float, b: float, lo: float, hi: float, level: int) -> float:
    """∫_lo^hi t^(a-1) (1-t)^(b-1) dt / B(a, b); nodes cluster double-exponentially at both ends."""
    log_b = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    h = 2.0**-level
    half = (hi - lo) / 2.0
    total = 0.0
    for k in range(-int(6.5 / h), int(6.5 / h) + 1):
        s = k * h
        u = math.pi / 2 * math.sinh(s)
        # Distance from the node to the nearer end, computed without cancellation (and 1/cosh(u)^2 likewise).
        e = math.exp(-2 * abs(u))
        near = half * (2 * e / (1 + e))
        if near <= 0.0:
            continue
        t, one_minus_t = (lo + near, 1.0 - (lo + near)) if u < 0 else (hi - near, (1.0 - hi) + near)
        if not (t > 0.0 and one_minus_t > 0.0):  # t may round to 1.0; one_minus_t stays exact
            continue
        dt = half * (math.pi / 2 * math.cosh(s)) * 4 * e / (1 + e) ** 2
        total += math.exp((a - 1) * math.log(t) + (b - 1) * math.log(one_minus_t) - log_b) * dt
    return total * h


def beta_cdf_quadrature(*, a: float, b: float, x: float, level: int = 7) -> float:
    """I_x(a, b) by tanh-sinh quadrature with step 2^-level, integrating on the side of x away from the mode so
    the density's peak is never inside the interval (a narrow interior peak is what fixed-step rules miss)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    # Where the density peaks; a monotone or U-shaped density peaks at 0 and/or 1.
    mode = (a - 1) / (a + b - 2) if a > 1 and b > 1 else 1.0 if a > 1 else 0.0 if b > 1 else 0.5
    if x <= mode:
        return _tanh_sinh(a=a, b=b, lo=0.0, hi=x, level=level)
    return 1.0 - _tanh_sinh(a=a, b=b, lo=x, hi=1.0, level=level)


def beta_quantile_reference(*, a: float, b: float, p: float) -> float:
    """x with beta_cdf_quadrature(x) = p, by 80 bisection steps."""
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if beta_cdf_quadrature(a=a, b=b, x=mid) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
