"""The 1-D cubic gradient map of the paper's Appendix A (Figs. 6 and 7).

Gradient descent with learning rate ``eta`` on the double well V(w) = (w^2 - 1)^2 / 4 is the map

    f(w)  = w - eta V'(w) = w [1 - eta (w^2 - 1)],
    f'(w) = 1 + eta - 3 eta w^2.

For 0 < eta < 1 orbits converge to the minima w = +-1 (lambda = ln|1 - 2 eta|), a period-doubling
cascade starts at eta = 1, chaos (lambda > 0) appears near eta ~ 1.3, eta = 2 is conjugate to the
Chebyshev map x -> -T_3(x) with w = sqrt(2) x (lambda = ln 3), and almost every orbit escapes to
infinity for eta > 2.

Every eta gets its own initial condition w0 ~ N(0, w0_std^2), drawn in order (one value per eta, by
position in ``etas``) from ``numpy.random.default_rng(seed)`` before the Numba kernel runs, so the
same seed gives bit-identical results. An orbit *escapes* when |w| > ``ESCAPE_BOUND`` or w is not
finite; from |w| > 1e6 the orbit provably diverges for every eta > 2e-12 (|f(w)| > |w| once
eta w^2 > 2 + eta). Escaped orbits get lyapunov = NaN and bifurcation iterates NaN from the escape on.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gdchaos.backend.cubic import ESCAPE_BOUND, cubic_map, cubic_map_derivative, cubic_orbits

__all__ = ["DEFAULT_ITERATES", "DEFAULT_ORBIT", "DEFAULT_TRANSIENT", "DEFAULT_W0_STD", "ESCAPE_BOUND", "LOG_FLOOR",
           "bifurcation", "cubic_map", "cubic_map_derivative", "initial_conditions", "lyapunov", "orbits"]

LOG_FLOOR = float(np.log(np.finfo(np.float64).tiny))
"""ln of the smallest normal float64 (about -708.4): the value ln|f'(w)| takes when f'(w) == 0."""

DEFAULT_TRANSIENT = 1000
DEFAULT_ITERATES = 200
DEFAULT_ORBIT = 10_000
DEFAULT_W0_STD = 0.1


def initial_conditions(n: int, *, seed: int = 0, w0_std: float = DEFAULT_W0_STD) -> NDArray[np.float64]:
    """The n starting points w0 ~ N(0, w0_std^2), one per eta, from ``default_rng(seed)``."""
    return np.random.default_rng(seed).normal(0.0, w0_std, size=n)


def orbits(
    etas: ArrayLike,
    *,
    seed: int = 0,
    w0_std: float = DEFAULT_W0_STD,
    transient: int = DEFAULT_TRANSIENT,
    iterates: int = DEFAULT_ITERATES,
    orbit: int = DEFAULT_ORBIT,
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]]:
    """Lyapunov exponents, escape flags and bifurcation iterates in one pass.

    After ``transient`` steps from w0, lambda(eta) = (1/orbit) sum_{k<orbit} ln|f'(w_k)| (|f'| = 0
    counts as ``LOG_FLOOR``) and the bifurcation row holds w_0 .. w_{iterates-1}. ``escaped`` is
    True when the orbit leaves |w| <= ESCAPE_BOUND within transient + max(iterates, orbit) steps.
    Returns ``(lyapunov (n,), escaped (n,), bifurcation (n, iterates))``.
    """
    eta = np.ascontiguousarray(etas, dtype=np.float64).reshape(-1)
    w0 = initial_conditions(eta.size, seed=seed, w0_std=w0_std)
    return cubic_orbits(eta, w0, int(transient), int(iterates), int(orbit), LOG_FLOOR)


def lyapunov(
    etas: ArrayLike,
    *,
    seed: int = 0,
    w0_std: float = DEFAULT_W0_STD,
    transient: int = DEFAULT_TRANSIENT,
    orbit: int = DEFAULT_ORBIT,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """lambda(eta) = (1/orbit) sum_{k<orbit} ln|f'(w_k)| after a transient; NaN where escaped.

    Returns ``(lyapunov, escaped)``, both of shape (n,).
    """
    lyap, escaped, _ = orbits(etas, seed=seed, w0_std=w0_std, transient=transient, iterates=0, orbit=orbit)
    return lyap, escaped


def bifurcation(
    etas: ArrayLike,
    *,
    seed: int = 0,
    w0_std: float = DEFAULT_W0_STD,
    transient: int = DEFAULT_TRANSIENT,
    iterates: int = DEFAULT_ITERATES,
) -> NDArray[np.float64]:
    """The iterates w_k = f^(transient + k)(w0), k < iterates, for each eta: shape (n, iterates),
    NaN from an escape on."""
    return orbits(etas, seed=seed, w0_std=w0_std, transient=transient, iterates=iterates, orbit=0)[2]
