"""CPU kernels of fully connected layers: matrix products, element-wise activations, reductions.

Every kernel works on a leading *network axis* of size R (reference,
replicas, initial conditions, learning rates), so one call serves all networks.

Layouts used here:
- hidden activations ``A`` of shape (R, N, h): network, sample, unit;
- the first layer of all networks as one matrix ``W1cat`` of shape (d, R*h), so that
  ``X @ W1cat`` is a single BLAS call for the shared input ``X`` (N, d);
- ``Z1cat`` of shape (N, R*h), the result of that product.

Element-wise work is done by parallel Numba kernels with the SIMD-friendly exp/tanh/sigmoid of
:mod:`gdchaos.backend.vecmath`: ``np.tanh`` is single-threaded and, on MNIST, costs as much as
the matrix products.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from gdchaos.backend import vecmath
from gdchaos.backend.activations import activation_code
from gdchaos.backend.jit import kernel
from gdchaos.backend.rows import activate_row, derivative_from_output, segment_distances, sgd_step
from gdchaos.backend.threads import launch


def input_matmul(x: np.ndarray, w_cat: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Z = X @ W_cat: the first layer of all R networks as one BLAS product, (N, d) @ (d, R*h)."""
    return np.matmul(x, w_cat, out=out)


def input_matmul_transposed(x: np.ndarray, delta_cat: np.ndarray) -> np.ndarray:
    """G = X^T @ Delta: first-layer weight gradients of all networks, (d, N) @ (N, R*h)."""
    return x.T @ delta_cat


SMALL_MATMUL = 1 << 17  # n * k * m below which a Numba loop beats one BLAS call per network


@kernel(parallel=True)
def _small_batched_matmul(a, b, out):
    n_nets, rows, inner = a.shape
    cols = b.shape[2]
    for r in prange(n_nets):
        for i in range(rows):
            for j in range(cols):
                out[r, i, j] = 0.0
            for k in range(inner):
                value = a[r, i, k]
                for j in range(cols):
                    out[r, i, j] += value * b[r, k, j]


def batched_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """C[r] = A[r] @ B[r] for every network r (into ``out`` when given).

    One BLAS call per network for large matrices; for small ones (many tiny networks, e.g. Iris
    balls over a whole learning-rate grid) a parallel Numba loop over networks.
    """
    if a.shape[1] * a.shape[2] * b.shape[2] >= SMALL_MATMUL:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=np.result_type(a, b))
    # one compiled version (C layout): Numba would reuse an A-layout version compiled earlier in the
    # process for C arrays, so which code ran, and its bits, would depend on the Numba cache
    launch(_small_batched_matmul, a.size + out.size, np.ascontiguousarray(a), np.ascontiguousarray(b), out)
    return out


@kernel(parallel=True)
def _bias_activation_split(z_cat, bias, code, out):
    n_samples = z_cat.shape[0]
    n_nets, width = bias.shape
    for n in prange(n_samples):
        for r in range(n_nets):
            activate_row(z_cat[n, r * width:(r + 1) * width], bias[r], code, out[r, n])


def bias_activation_split(z_cat: np.ndarray, bias: np.ndarray, activation: str,
                          out: np.ndarray | None = None) -> np.ndarray:
    """A[r, n, j] = act(Z_cat[n, r*h + j] + b[r, j]): bias, activation and the split per network."""
    n_nets, width = bias.shape
    if out is None:
        out = np.empty((n_nets, z_cat.shape[0], width), dtype=z_cat.dtype)
    launch(_bias_activation_split, out.size, z_cat, bias, activation_code(activation), out)
    return out


@kernel(parallel=True)
def _bias_activation(z, bias, code):
    n_nets, n_samples, width = z.shape
    for n in prange(n_samples):
        for r in range(n_nets):
            activate_row(z[r, n], bias[r], code, z[r, n])


def bias_activation_(z: np.ndarray, bias: np.ndarray, activation: str) -> np.ndarray:
    """In place: Z[r, n, j] <- act(Z[r, n, j] + b[r, j]) for a hidden layer of shape (R, N, h)."""
    launch(_bias_activation, z.size, z, bias, activation_code(activation))
    return z


@kernel(parallel=True)
def _activation_backward(grad_a, a, code, out, out_is_cat):
    n_nets, n_samples, width = a.shape
    for n in prange(n_samples):
        for r in range(n_nets):
            for j in range(width):
                value = grad_a[r, n, j] * derivative_from_output(a[r, n, j], code)
                if out_is_cat:
                    out[0, n, r * width + j] = value
                else:
                    out[r, n, j] = value


def activation_backward(grad_a: np.ndarray, a: np.ndarray, activation: str, *,
                        concatenate: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Delta = dL/dA * act'(Z), with act' from the stored output A (tanh: 1 - A^2).

    With ``concatenate`` the result is laid out as (N, R*h) for :func:`input_matmul_transposed`;
    otherwise as (R, N, h). ``out``, when given, has that shape.
    """
    n_nets, n_samples, width = a.shape
    if concatenate:
        out = np.empty((1, n_samples, n_nets * width), dtype=a.dtype) if out is None else out[None]
    elif out is None:
        out = np.empty_like(a)
    launch(_activation_backward, a.size, grad_a, a, activation_code(activation), out, concatenate)
    return out[0] if concatenate else out


@kernel(parallel=True)
def _softmax_cross_entropy(logits, bias, labels, scale, grad, loss_parts, correct_parts):
    n_nets, n_samples, n_classes = logits.shape
    for r in prange(n_nets):
        loss = 0.0
        correct = 0
        for n in range(n_samples):
            row_max = -np.inf
            arg_max = 0
            for c in range(n_classes):
                value = logits[r, n, c] + bias[r, c]
                logits[r, n, c] = value
                if value > row_max:
                    row_max = value
                    arg_max = c
            total = 0.0
            for c in range(n_classes):
                grad[r, n, c] = vecmath.exp_nonpositive(logits[r, n, c] - row_max)
                total += grad[r, n, c]
            y = labels[n]
            loss += row_max + np.log(total) - logits[r, n, y]
            if arg_max == y:
                correct += 1
            for c in range(n_classes):
                grad[r, n, c] *= scale / total
            grad[r, n, y] -= scale
        loss_parts[r] = loss
        correct_parts[r] = correct


def softmax_cross_entropy(logits: np.ndarray, bias: np.ndarray, labels: np.ndarray, scale: float,
                          grad: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Summed cross-entropy of softmax(logits + b), stably via log-sum-exp, for every network.

    loss_r = sum_n [log sum_c exp(z_nc) - z_{n,y_n}];  dL/dz = scale * (softmax(z) - onehot(y)).
    ``logits`` (R, N, C) gets the bias added in place. Returns (summed loss per network (R,),
    number of correct arg-max predictions per network (R,), scaled gradient (R, N, C), written
    into ``grad`` when given).
    """
    n_nets = logits.shape[0]
    if grad is None:
        grad = np.empty_like(logits)
    loss = np.empty(n_nets, dtype=np.float64)
    correct = np.empty(n_nets, dtype=np.int64)
    launch(_softmax_cross_entropy, logits.size, logits, bias, labels, scale, grad, loss, correct)
    return loss, correct, grad


@kernel(parallel=True)
def _count_correct(logits, bias, labels, out):
    n_nets, n_samples, n_classes = logits.shape
    for r in prange(n_nets):
        correct = 0
        for n in range(n_samples):
            best = -np.inf
            arg_max = 0
            for c in range(n_classes):
                value = logits[r, n, c] + bias[r, c]
                if value > best:
                    best = value
                    arg_max = c
            if arg_max == labels[n]:
                correct += 1
        out[r] = correct


def count_correct(logits: np.ndarray, bias: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Number of samples whose arg-max of (logits + b) equals the label, per network (R,)."""
    out = np.empty(logits.shape[0], dtype=np.int64)
    launch(_count_correct, logits.size, logits, bias, labels, out)
    return out


@kernel(parallel=True)
def _l1_distances(theta, pairs, bounds, out):
    for i in prange(pairs.shape[0]):
        segment_distances(theta[pairs[i, 0]], theta[pairs[i, 1]], bounds, out[i])


def l1_distances(theta: np.ndarray, pairs: np.ndarray, bounds: np.ndarray | None = None) -> np.ndarray:
    """d_is = sum_{k in segment s} |theta[a_i, k] - theta[b_i, k]| for each pair (a_i, b_i).

    ``bounds`` (S+1,) splits the parameter axis into segments (e.g. one per tensor of the flat
    layout); the default is one segment, the whole vector. Returns (n_pairs, S).
    """
    bounds = np.array([0, theta.shape[1]]) if bounds is None else bounds
    out = np.empty((pairs.shape[0], len(bounds) - 1), dtype=np.float64)
    launch(_l1_distances, pairs.shape[0] * theta.shape[1], theta,
            np.ascontiguousarray(pairs, dtype=np.int64), np.asarray(bounds, dtype=np.int64), out)
    return out


@kernel(parallel=True)
def _sgd_update(theta, grad, eta):
    for r in prange(theta.shape[0]):
        sgd_step(theta[r], grad[r], eta[r])


def gradient_step_(theta: np.ndarray, grad: np.ndarray, eta: np.ndarray) -> None:
    """In place, Eq. 1: theta[r] <- theta[r] - eta[r] * grad[r] for every network r."""
    launch(_sgd_update, theta.size, theta, grad, eta)
