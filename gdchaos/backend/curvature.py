"""CPU kernels of the R-operator pass that gives exact Hessian-vector products.

For a direction v = (V_l, c_l) in parameter space, R{f} = d/dt f(theta + t v) at t = 0. The kernels
fuse the element-wise parts of the R-pass of a fully connected layer, given the stored results of the
ordinary pass (activations A, logits, gradients G = dL/dA); the matrix products stay in
:mod:`gdchaos.backend.dense`. Layouts are those of :mod:`gdchaos.backend.dense`: hidden arrays
(R, N, h) and the first layer of all networks side by side, (N, R*h). The kernels of the R-pass of
conv blocks (conv, activation, max pooling; channels-last, :mod:`gdchaos.backend.conv`) follow at
the end.

The second derivative of the activation enters as act''(z) R{z}. Written from the output a = act(z),
act''(z) = k(a) act'(z) with k(a) = -2a (tanh), 1 - 2a (sigmoid), 0 (relu), so
act''(z) R{z} = k(a) R{a}: only A and R{A} are needed, never Z or R{Z}.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from gdchaos.backend.activations import IDENTITY, activation_code
from gdchaos.backend.jit import kernel
from gdchaos.backend.rows import derivative_from_output
from gdchaos.backend.threads import launch, output


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
                out[r, n, j] = derivative_from_output(a[r, n, j], code) * (
                    rz_cat[n, base + j] + r_bias[r, j])


def activation_rop_split(rz_cat: np.ndarray, a: np.ndarray, r_bias: np.ndarray,
                         activation: str, out: np.ndarray | None = None) -> np.ndarray:
    """First layer: R{A}[r, n, j] = act'(Z) (RZ_cat[n, r*h + j] + c[r, j]), RZ_cat = X @ V_cat.

    ``a`` (R, N, h) are the layer's outputs, from which act' is computed; returns R{A} (R, N, h)
    (into ``out`` when given).
    """
    out = output(out, a.shape, a.dtype)
    r_bias = np.ascontiguousarray(r_bias)  # one compiled version, whatever the cache holds (dense.batched_matmul)
    launch(_activation_rop_split, a.size, rz_cat, a, r_bias, activation_code(activation), out)
    return out


@kernel(parallel=True)
def _activation_rop(rz, a, r_bias, code):
    n_nets, n_samples, width = a.shape
    for n in prange(n_samples):
        for r in range(n_nets):
            for j in range(width):
                rz[r, n, j] = derivative_from_output(a[r, n, j], code) * (rz[r, n, j] + r_bias[r, j])


def activation_rop_(rz: np.ndarray, a: np.ndarray, r_bias: np.ndarray, activation: str) -> np.ndarray:
    """In place on a hidden layer (R, N, h): R{Z} (without bias) <- R{A} = act'(Z) (R{Z} + c)."""
    launch(_activation_rop, a.size, rz, a, r_bias, activation_code(activation))
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
    launch(_softmax_rop, logits.size, logits, r_logits, np.ascontiguousarray(r_bias), scale)
    return r_logits


@kernel(parallel=True)
def _activation_backward_rop(grad_a, r_grad_a, a, ra, code, out, out_is_cat):
    n_nets, n_samples, width = a.shape
    for n in prange(n_samples):
        for r in range(n_nets):
            for j in range(width):
                value = a[r, n, j]
                r_delta = derivative_from_output(value, code) * r_grad_a[r, n, j] + (
                    _curvature_from_output(value, code) * ra[r, n, j] * grad_a[r, n, j])
                if out_is_cat:
                    out[0, n, r * width + j] = r_delta
                else:
                    out[r, n, j] = r_delta


def activation_backward_rop(grad_a: np.ndarray, r_grad_a: np.ndarray, a: np.ndarray,
                            ra: np.ndarray, activation: str, *, concatenate: bool = False,
                            out: np.ndarray | None = None) -> np.ndarray:
    """R{Delta} = R{G} act'(Z) + G act''(Z) R{Z} = R{G} act'(Z) + G k(A) R{A}.

    G = dL/dA, R{G} its R-op, A and R{A}, all (R, N, h). With ``concatenate`` the result is laid
    out as (N, R*h) for :func:`~gdchaos.backend.dense.input_matmul_transposed`, else (R, N, h);
    into ``out`` (of that shape) when given.
    """
    n_nets, n_samples, width = a.shape
    shape = (n_samples, n_nets * width) if concatenate else a.shape
    out = output(out, shape, a.dtype)
    if concatenate:
        out = out.reshape(1, n_samples, n_nets * width)
    launch(_activation_backward_rop, a.size, grad_a, r_grad_a, a, ra, activation_code(activation),
            out, concatenate)
    return out[0] if concatenate else out


# ----------------------------------------------------------------------------- conv blocks
# Serial, GIL-free kernels for the R-pass of a conv block (conv -> activation -> max pooling) in
# the channels-last layout of :mod:`gdchaos.backend.conv`, run on its worker threads like the
# forward and backward kernels there. Max pooling is piecewise linear: its R-op reads the tangent
# at the window position of the forward pass's first maximum (``arg``), and the R-op of its
# backward pass scatters to the same position.


@kernel(nogil=True)
def _pool_activate_rop(rz, r_bias, out, arg, code, size, r_out):
    n_nets, n_samples, out_h, out_w, channels = out.shape
    for r in range(n_nets):
        for s in range(n_samples):
            for y in range(out_h):
                for x in range(out_w):
                    for c in range(channels):
                        where = arg[r, s, y, x, c]
                        value = rz[r, s, y * size + where // size, x * size + where % size, c] + r_bias[r, c]
                        if code != IDENTITY:
                            value *= derivative_from_output(out[r, s, y, x, c], code)
                        r_out[r, s, y, x, c] = value


def pool_activate_rop(rz: np.ndarray, r_bias: np.ndarray, out: np.ndarray, arg: np.ndarray,
                      activation: str | None, size: int,
                      r_out: np.ndarray | None = None) -> np.ndarray:
    """R-op of :func:`~gdchaos.backend.conv.pool_activate`: R{P} = act'(P) (R{Z} + c) at the maxima.

    R{P}[r, n, y, x, ch] = act'(P[r, n, y, x, ch]) (R{Z}[r, n, s*y + i*, s*x + j*, ch] + c[r, ch]),
    (i*, j*) = the window position ``arg`` of the forward pass, act' from the output P (1 for
    ``activation`` None). ``rz`` (R, n, H, W, C) is the tangent of the pre-activation without bias.
    """
    r_out = output(r_out, out.shape, out.dtype)
    _pool_activate_rop(rz, r_bias, out, arg, activation_code(activation), size, r_out)
    return r_out


@kernel(nogil=True)
def _input_conv_pool_rop(x, v_kernel, r_bias, out, arg, code, size, kernel, padding, r_out):
    n_nets, n_samples, out_h, out_w, c_out = out.shape
    height, width, c_in = x.shape[1], x.shape[2], x.shape[3]
    for r in range(n_nets):
        for s in range(n_samples):
            for y in range(out_h):
                for xx in range(out_w):
                    for o in range(c_out):
                        scale = 1.0
                        if code != IDENTITY:
                            scale = derivative_from_output(out[r, s, y, xx, o], code)
                        if scale == 0.0:  # ReLU: about half the windows
                            r_out[r, s, y, xx, o] = 0.0
                            continue
                        where = arg[r, s, y, xx, o]
                        top = y * size + where // size - padding
                        left = xx * size + where % size - padding
                        total = r_bias[r, o]
                        k = 0
                        for i in range(kernel):
                            for j in range(kernel):
                                if 0 <= top + i < height and 0 <= left + j < width:
                                    for c in range(c_in):
                                        total += v_kernel[r, k + c, o] * x[s, top + i, left + j, c]
                                k += c_in
                        r_out[r, s, y, xx, o] = scale * total


def input_conv_pool_rop(x: np.ndarray, v_kernel: np.ndarray, r_bias: np.ndarray, out: np.ndarray,
                        arg: np.ndarray, kernel_size: int, padding: int, activation: str | None,
                        size: int, r_out: np.ndarray | None = None) -> np.ndarray:
    """R-op of :func:`~gdchaos.backend.conv.input_conv_pool_activate` (a conv block on the shared
    input x (n, H, W, C), which does not depend on theta): R{Z} = conv(x, V) + c is needed at the
    forward pass's maxima only and is computed there directly, R{P} = act'(P) R{Z}[maximum].

    ``v_kernel`` (R, k*k*C, C_out) and ``r_bias`` (R, C_out) are the direction's kernel and bias.
    """
    r_out = output(r_out, out.shape, out.dtype)
    _input_conv_pool_rop(x, v_kernel, r_bias, out, arg, activation_code(activation), size, kernel_size,
                         padding, r_out)
    return r_out


@kernel(nogil=True)
def _pool_backward_rop(grad, r_grad, out, r_out, code):
    for t in range(out.size):
        a = out[t]
        r_grad[t] = derivative_from_output(a, code) * r_grad[t] + (
            _curvature_from_output(a, code) * r_out[t] * grad[t])


def pool_backward_rop_(grad: np.ndarray, r_grad: np.ndarray, out: np.ndarray, r_out: np.ndarray,
                       activation: str | None) -> np.ndarray:
    """In place on r_grad: R{dL/dZ} at the maxima, before :func:`pool_activate_backward` scatters it.

    With G = dL/dP, P the block's output and R{P} its R-op (all (R, n, H', W', C), contiguous):
    R{G} <- act'(P) R{G} + act''(Z) R{Z} G = act'(P) R{G} + k(P) R{P} G (k as for dense layers;
    unchanged for ``activation`` None).
    """
    if activation is None:
        return r_grad
    for array in (grad, r_grad, out, r_out):
        if array.shape != out.shape or not array.flags.c_contiguous:
            raise ValueError(f"pool_backward_rop_: contiguous arrays of shape {out.shape} expected")
    _pool_backward_rop(grad.reshape(-1), r_grad.reshape(-1), out.reshape(-1), r_out.reshape(-1),
                       activation_code(activation))
    return r_grad
