"""Per-row helpers that the kernels of every layer family inline: activations, Eq. 1, L1 distances.

Each is compiled into its caller (``inline="always"``), so a kernel of :mod:`.dense`, :mod:`.sparse`,
:mod:`.small`, :mod:`.conv` or :mod:`.curvature` computes them with exactly the same operations.
"""
from __future__ import annotations

from numba import njit

from gdchaos.backend import vecmath
from gdchaos.backend.jit import reduction
from gdchaos.backend.vector import where_less


@njit(inline="always")
def activate(z, code):
    """act(z) by ``code`` (0 tanh, 1 sigmoid, 2 relu), of a float64 or of a :mod:`.vector` vector."""
    if code == 0:
        return vecmath.tanh(z)
    if code == 1:
        return vecmath.sigmoid(z)
    return where_less(0.0, z, z, 0.0)  # NaN gives 0, as max(z, 0) written as a comparison


@njit(inline="always")
def activate_row(z, bias, code, out):
    """out[k] = act(z[k] + bias[k]) over 1-D arrays; the branch on ``code`` sits outside the loops
    (a literal code in each), so each loop is one straight-line body that LLVM vectorises."""
    if code == 0:
        for k in range(out.size):
            out[k] = activate(z[k] + bias[k], 0)
    elif code == 1:
        for k in range(out.size):
            out[k] = activate(z[k] + bias[k], 1)
    else:
        for k in range(out.size):
            out[k] = activate(z[k] + bias[k], 2)


@njit(inline="always")
def derivative_from_output(a, code):
    """Activation derivative written in terms of its output a = act(z), of a float64 or a vector."""
    if code == 0:
        return 1.0 - a * a
    if code == 1:
        return a * (1.0 - a)
    return where_less(0.0, a, 1.0, 0.0)


@njit(inline="always")
def segment_distances(a, b, bounds, out):
    """out[s] = sum_{bounds[s] <= k < bounds[s+1]} |a[k] - b[k]|, summed in order."""
    for s in range(bounds.shape[0] - 1):
        total = 0.0
        for k in range(bounds[s], bounds[s + 1]):
            total += abs(a[k] - b[k])
        out[s] = total


@njit(inline="always")
def sgd_step(p, g, step):
    """Eq. 1 on one network: p <- p - step g."""
    for k in range(p.shape[0]):
        p[k] -= step * g[k]


@reduction()
def dot(a, b, n):
    """sum_k a[k] b[k], k < n (partial sums in vector lanes: the order is the compiled code's)."""
    s = 0.0
    for k in range(n):
        s += a[k] * b[k]
    return s


@njit(inline="always")
def axpy(alpha, x, y):
    """y[k] += alpha x[k] over 1-D arrays of one length."""
    for k in range(y.size):
        y[k] += alpha * x[k]
