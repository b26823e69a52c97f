"""The cubic gradient map's orbits (paper Appendix A), every learning rate on its own thread.

f(w) = w [1 - eta (w^2 - 1)] and f'(w) = 1 + eta - 3 eta w^2 are plain Python functions (they work
on scalars and arrays alike) compiled here for the kernel. Plain ``numba.njit`` options: the kernel
keeps the arithmetic it was validated with (no fused multiply-add).
"""
from __future__ import annotations

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

ESCAPE_BOUND = 1e6
"""|w| beyond this (or a non-finite w) marks an orbit as escaped."""


def cubic_map(w: ArrayLike, eta: ArrayLike) -> NDArray[np.float64] | float:
    """One gradient-descent step on the double well: f(w) = w [1 - eta (w^2 - 1)]."""
    return w * (1.0 - eta * (w * w - 1.0))


def cubic_map_derivative(w: ArrayLike, eta: ArrayLike) -> NDArray[np.float64] | float:
    """The map's slope, f'(w) = 1 + eta - 3 eta w^2."""
    return 1.0 + eta - 3.0 * eta * w * w


_f = numba.njit(cache=True)(cubic_map)
_df = numba.njit(cache=True)(cubic_map_derivative)


@numba.njit(cache=True)
def _bounded(w: float) -> bool:
    """True while the orbit has not escaped (also False for NaN)."""
    return abs(w) <= ESCAPE_BOUND


@numba.njit(parallel=True, cache=True)
def cubic_orbits(
    etas: NDArray[np.float64],
    w0: NDArray[np.float64],
    transient: int,
    iterates: int,
    orbit: int,
    log_floor: float,
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]]:
    """Iterate every eta in parallel: drop ``transient`` steps, record ``iterates`` states and
    average ln|f'(w_k)| over ``orbit`` states, all counted from the end of the transient.

    Returns (lyapunov (n,), escaped (n,), bifurcation (n, iterates)); an escaped orbit gets
    lyapunov NaN and NaN iterates from the escape on; ln|f'| = ln 0 counts as ``log_floor``.
    """
    n = etas.shape[0]
    lyap = np.full(n, np.nan)
    escaped = np.zeros(n, dtype=np.bool_)
    bif = np.full((n, iterates), np.nan)
    for i in numba.prange(n):
        eta = etas[i]
        w = w0[i]
        for _ in range(transient):
            w = _f(w, eta)
            if not _bounded(w):
                break
        if not _bounded(w):
            escaped[i] = True
            continue
        total = 0.0
        for k in range(max(iterates, orbit)):
            if k < iterates:
                bif[i, k] = w
            if k < orbit:
                total += max(np.log(abs(_df(w, eta))), log_floor)
            w = _f(w, eta)
            if not _bounded(w):
                escaped[i] = True
                break
        if not escaped[i] and orbit > 0:
            lyap[i] = total / orbit
    return lyap, escaped, bif
