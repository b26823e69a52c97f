"""Nanoseconds per element of the engine's SIMD exp, tanh and sigmoid (``gdchaos.backend.vecmath``).

Each function is applied over rows of a given length (120: one unit of an Iris network over its
training samples; longer rows for comparison), in a loop like the kernels' own, one thread. A
plain division is timed the same way as a yardstick.
Run:  python benchmarks/vecmath_cost.py [--lengths 120 1200 4096] [--elements 2e7]
"""
from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from gdchaos.backend import vecmath
from gdchaos.backend.jit import kernel


@kernel()
def _rows(z, out, repeats, which):
    """out = f(z) row by row, ``repeats`` times; the branch on ``which`` sits outside the element loops."""
    for _ in range(repeats):
        for r in range(z.shape[0]):
            a, b = z[r], out[r]
            if which == 0:
                for k in range(a.size):
                    b[k] = vecmath.tanh(a[k])
            elif which == 1:
                for k in range(a.size):
                    b[k] = vecmath.exp_nonpositive(-abs(a[k]))
            elif which == 2:
                for k in range(a.size):
                    b[k] = vecmath.sigmoid(a[k])
            else:
                for k in range(a.size):
                    b[k] = a[k] / (2.0 + a[k] * a[k])


FUNCTIONS = ("tanh", "exp", "sigmoid", "division")  # codes 0-3 of _rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[120, 1200, 4096])
    parser.add_argument("--elements", type=float, default=2e7, help="elements per timing")
    args = parser.parse_args()
    numba.set_num_threads(1)
    rng = np.random.default_rng(0)
    print("length  " + "  ".join(f"{name:>9}" for name in FUNCTIONS) + "   (ns per element, best of 3)")
    for length in args.lengths:
        z = rng.normal(scale=2.0, size=(max(1, 1200 // length), length))
        out = np.empty_like(z)
        repeats = max(1, int(args.elements / z.size))
        cells = []
        for which in range(len(FUNCTIONS)):
            _rows(z, out, 1, which)
            best = np.inf
            for _ in range(3):
                started = time.perf_counter()
                _rows(z, out, repeats, which)
                best = min(best, time.perf_counter() - started)
            cells.append(f"{best / (repeats * z.size) * 1e9:9.2f}")
        print(f"{length:6d}  " + "  ".join(cells))


if __name__ == "__main__":
    main()
