"""CPU kernels of the R-operator pass that gives exact Hessian-vector products.

For a direction v = (V_l, c_l) in parameter space, R{f} = d/dt f(theta + t v) at t = 0. The kernels
fuse the element-wise parts of the R-pass of a fully connected layer, given the stored results of the
ordinary pass (activations A, logits, gradients G = dL/dA); the matrix products stay in
:mod:`gdchaos.backend.dense`. Layouts are those of :mod:`gdchaos.backend.dense`: hidden arrays
(R, N, h) and the first layer of all networks side by side, (N, R*h).

The second derivative of the activation enters as act''(z) R{z}. Written from the output a = act(z),
act''(z) = k(a) act'(z) with k(a) = -2a (tanh), 1 - 2a (sigmoid), 0 (relu), so
act''(z) R{z} = k(a) R{a}: only A and R{A} are needed, never Z or R{Z}.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from gdchaos.backend.dense import _derivative_from_output, _launch, activation_code
from gdchaos.backend.jit import kernel


@njit(inline="always")
def _curvature_from_output(a: float, code: int) -> float:
    """k(a) = act''(z) / act'(z) from the output a: tanh -2a, sigmoid 1 - 2a, relu 0."""
    if code == 0:
        return -2.0 * a
    if code == 1:
        return 1.0 - 2.0 * a
    return 0.0


@kernel(parallel=True)
def _activation_rop_split(rz_cat, a, r_bias, code, out):
    n_nets, n_samples, width = a.shape
    for n in prange(n_samples):
        for r in range(n_nets):
            base = r * width
            for j in range(width):
                out[r, n, j] = _derivative_from_output(a[r, n, j], code) * (
                    rz_cat[n, base + j] + r_bias[r, j])


def activation_rop_split(rz_cat: np.ndarray, a: np.ndarray, r_bias: np.ndarray,
                         activation: str) -> np.ndarray:
    """First layer: R{A}[r, n, j] = act'(Z) (RZ_cat[n, r*h + j] + c[r, j]), RZ_cat = X @ V_cat.

    ``a`` (R, N, h) are the layer's outputs, from which act' is computed; returns R{A} (R, N, h).
    """
    out = np.empty_like(a)
    _launch(_activation_rop_split, a.size, rz_cat, a, r_bias, activation_code(activation), out)
    return out


@kernel(parallel=True)
def _activation_rop(rz, a, r_bias, code):
    n_nets, n_samples, width = a.shape
    for n in prange(n_samples):
        for r in range(n_nets):
            for j in range(width):
                rz[r, n, j] = _derivative_from_output(a[r, n, j], code) * (rz[r, n, j] + r_bias[r, j])


def activation_rop_(rz: np.ndarray, a: np.ndarray, r_bias: np.ndarray, activation: str) -> np.ndarray:
    """In place on a hidden layer (R, N, h): R{Z} (without bias) <- R{A} = act'(Z) (R{Z} + c)."""
    _launch(_activation_rop, a.size, rz, a, r_bias, activation_code(activation))
    return rz


@kernel(parallel=True)
def _softmax_rop(logits, r_logits, r_bias, scale):
    n_nets, n_samples, n_classes = logits.shape
    for r in prange(n_nets):
        for n in range(n_samples):
            row_max = -np.inf
            for c in range(n_classes):
                row_max = max(row_max, logits[r, n, c])
            total = 0.0
            for c in range(n_classes):
                total += np.exp(logits[r, n, c] - row_max)
            log_norm = row_max + np.log(total)
            mean_r = 0.0
            for c in range(n_classes):
                r_logits[r, n, c] += r_bias[r, c]
                mean_r += np.exp(logits[r, n, c] - log_norm) * r_logits[r, n, c]
            for c in range(n_classes):
                p = np.exp(logits[r, n, c] - log_norm)
                r_logits[r, n, c] = scale * p * (r_logits[r, n, c] - mean_r)


def softmax_rop_(logits: np.ndarray, r_logits: np.ndarray, r_bias: np.ndarray,
                 scale: float) -> np.ndarray:
    """In place: r_logits <- R{Delta} = scale R{p}, R{p} = p (R{z} - sum_c p_c R{z}_c).

    ``logits`` (R, N, C) include the bias, p = softmax(logits); R{z} = r_logits + c (pre-bias).
    """
    _launch(_softmax_rop, logits.size, logits, r_logits, r_bias, scale)
    return r_logits


@kernel(parallel=True)
def _activation_backward_rop(grad_a, r_grad_a, a, ra, code, out, out_is_cat):
    n_nets, n_samples, width = a.shape
    for n in prange(n_samples):
        for r in range(n_nets):
            for j in range(width):
                value = a[r, n, j]
                r_delta = _derivative_from_output(value, code) * r_grad_a[r, n, j] + (
                    _curvature_from_output(value, code) * ra[r, n, j] * grad_a[r, n, j])
                if out_is_cat:
                    out[0, n, r * width + j] = r_delta
                else:
                    out[r, n, j] = r_delta


def activation_backward_rop(grad_a: np.ndarray, r_grad_a: np.ndarray, a: np.ndarray,
                            ra: np.ndarray, activation: str, *, concatenate: bool = False,
                            ) -> np.ndarray:
    """R{Delta} = R{G} act'(Z) + G act''(Z) R{Z} = R{G} act'(Z) + G k(A) R{A}.

    G = dL/dA, R{G} its R-op, A and R{A}, all (R, N, h). With ``concatenate`` the result is laid
    out as (N, R*h) for :func:`~gdchaos.backend.dense.input_matmul_transposed`, else (R, N, h).
    """
    n_nets, n_samples, width = a.shape
    if concatenate:
        out = np.empty((1, n_samples, n_nets * width), dtype=a.dtype)
    else:
        out = np.empty_like(a)
    _launch(_activation_backward_rop, a.size, grad_a, r_grad_a, a, ra, activation_code(activation),
            out, concatenate)
    return out[0] if concatenate else out
