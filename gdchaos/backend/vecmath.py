"""exp, tanh and sigmoid written for SIMD: no branches and no calls into libm.

LLVM cannot vectorise a loop that calls libm's exp or tanh, and a branch on the argument (two
formulas for small and large |z|) mispredicts on random data; on MNIST the hidden tanh then
costs as much as the matrix products. These functions use only arithmetic, selects and integer
operations on the bits of doubles (tanh from an accurate e^x - 1, so one polynomial serves
small and large arguments), so the loops of the kernels that inline them run on SIMD
lanes. Each compiles for a float64 and for a vector of :mod:`.vector` (a lane computes what
the scalar computes). Accuracy (tested against NumPy): a few ulp, NaN propagates, overflow cannot happen.
"""
from __future__ import annotations

import math

from numba import njit

from gdchaos.backend.vector import exponent_scale, where_less

LOG2E = 1.4426950408889634  # 1 / ln 2
LN2 = 0.6931471805599453  # ln 2 rounded to float64
LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * LN2_HI is exact for |k| < 2^20
LN2_LO = 1.90821492927058770002e-10
ROUND = 6755399441055744.0  # 1.5 * 2^52: x + ROUND rounds x to an integer held in the low bits
EXP_FLOOR = -708.0  # exp(-708) = 3.3e-308 is the smallest result kept normal
TANH_ONE = 20.0  # tanh(a) rounds to 1 for a > 19.06


@njit(inline="always")
def _reduce(x: float) -> tuple[float, float]:
    """x = k ln 2 + r, k = round(x / ln 2), |r| <= ln2/2, for x <= 0: returns (r, 2^k).

    x < -708 is raised to -708 (e^-708 = 3.3e-308, the smallest result kept normal); NaN
    propagates through r.
    """
    x = where_less(x, EXP_FLOOR, EXP_FLOOR, x)  # NaN fails the test and propagates
    return _reduce_scaled(x, 1.0)


@njit(inline="always")
def _reduce_scaled(a: float, scale: float) -> tuple[float, float]:
    """_reduce of x = scale * a, -708 <= x <= 0, with ``scale`` a power of 2 (x is exact): the
    product by LOG2E is taken from a directly, so it does not wait for x (a shorter chain)."""
    shifted = a * (scale * LOG2E) + ROUND
    k = shifted - ROUND
    r = (scale * a - k * LN2_HI) - k * LN2_LO
    return r, exponent_scale(shifted)


@njit(inline="always")
def _series_tail(r: float) -> float:
    """P(r) = 1/2 + r/6 + ... + r^11/13!: e^r = 1 + r + r^2 P(r) (error < 4e-18 for |r| <= ln2/2).

    Estrin's scheme (pairs, then powers r^2, r^4, r^8): a dependency chain of 5 multiply-adds
    instead of Horner's 11, for the same number of operations (timing: docs/performance.md).
    """
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    p01 = 0.5 + r * (1.0 / 6.0)
    p23 = 1.0 / 24.0 + r * (1.0 / 120.0)
    p45 = 1.0 / 720.0 + r * (1.0 / 5040.0)
    p67 = 1.0 / 40320.0 + r * (1.0 / 362880.0)
    p89 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0)
    pab = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0)
    return ((p01 + r2 * p23) + r4 * (p45 + r2 * p67)) + r8 * (p89 + r2 * pab)


@njit(inline="always")
def exp_nonpositive(x: float) -> float:
    """e^x for x <= 0 (larger x is not supported): e^x = 2^k e^r, k = round(x / ln 2), |r| <= ln2/2.

    e^r by its Taylor polynomial of degree 13 (ending in ... r + 1), 2^k built in the
    exponent bits. x < -708 gives e^-708 instead of a subnormal or 0: negligible wherever it is
    added to 1.
    """
    r, two_k = _reduce(x)
    p = _series_tail(r) * r + 1.0
    return (p * r + 1.0) * two_k


@njit(inline="always")
def expm1_nonpositive(x: float) -> float:
    """e^x - 1 for x <= 0, accurate to a few ulp also near 0 (where e^x - 1 cancels).

    x = k ln 2 + r as in :func:`exp_nonpositive`; e^x - 1 = 2^k (e^r - 1) + (2^k - 1), with
    e^r - 1 = r + r^2 P(r); both terms are exact or well conditioned (k = 0 gives e^r - 1 itself,
    k != 0 a result below -0.29).
    """
    r, two_k = _reduce(x)
    return _expm1_reduced(r, two_k)


@njit(inline="always")
def _expm1_reduced(r: float, two_k: float) -> float:
    """e^x - 1 = 2^k (e^r - 1) + (2^k - 1) from the reduced argument (r, 2^k) of x."""
    q = r + (r * r) * _series_tail(r)
    return two_k * q + (two_k - 1.0)


@njit(inline="always")
def tanh(z: float) -> float:
    """tanh z = sign(z) (-m)/(2 + m), m = e^(-2|z|) - 1: one formula, no cancellation near 0.

    |z| is clipped at 20 (tanh rounds to 1 beyond 19.06), so e^(-2|z|) needs no floor; the sign
    is copied at the end (NaN propagates through the clip and the formula).
    """
    a = abs(z)
    clipped = where_less(TANH_ONE, a, TANH_ONE, a)  # one vminpd; NaN fails the test and propagates
    r, two_k = _reduce_scaled(clipped, -2.0)
    m = _expm1_reduced(r, two_k)
    return math.copysign(-m / (2.0 + m), z)


@njit(inline="always")
def sigmoid(z: float) -> float:
    """sigmoid z = 1/(1 + e^-z) for z >= 0 and e^z/(1 + e^z) below, with e = e^(-|z|) <= 1."""
    e = exp_nonpositive(-abs(z))
    return where_less(z, 0.0, e / (1.0 + e), 1.0 / (1.0 + e))
