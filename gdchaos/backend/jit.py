"""The Numba options shared by every kernel of the engine.

- ``error_model="numpy"``: a float division by zero gives inf or NaN, as in NumPy, instead of
  raising (divergence at large learning rates is data, never an error); without it Numba guards
  every division with a branch, and loops that divide (tanh, softmax) cannot be vectorised.
- ``fastmath={"contract"}``: a*b + c may become one fused multiply-add (one rounding instead of
  two). No other fast-math flag: NaN and inf must propagate exactly, and sums keep their order.
  The one exception is :func:`reduction`: small sums over samples marked ``reassoc``.
- ``cache=True``: compiled kernels are kept next to the sources. Numba checks only the source
  file of the kernel itself; after editing an inlined helper in another file (e.g. vecmath.py),
  delete the ``__pycache__`` folders of ``gdchaos/backend``.

Results are deterministic for a given machine: the same code on the same data gives the same bits.
"""
from __future__ import annotations

from numba import njit


def kernel(**options):
    """``numba.njit`` with the engine's options (``parallel``, ``nogil``, ... may be added)."""
    return njit(cache=True, error_model="numpy", fastmath={"contract"}, **options)


def exact(**options):
    """Numba with the engine's error model and cache but no fast-math flag at all (no fused
    multiply-add): every operation rounds as the same NumPy expression does (analysis code whose
    results are compared with NumPy's)."""
    return njit(cache=True, error_model="numpy", **options)


def reduction(**options):
    """:func:`kernel` plus ``reassoc``, for small sum loops (dot products over samples): LLVM may
    then split the sum into several vector partial sums. The order is fixed by the compiled code,
    so results stay deterministic; the flag stays on these instructions when they are inlined into
    a caller compiled without it. NaN and inf still propagate (no ``nnan``/``ninf``)."""
    return njit(cache=True, error_model="numpy", fastmath={"contract", "reassoc"}, **options)
