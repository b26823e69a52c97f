"""CPU kernels of convolutional networks: im2col / col2im, fused conv blocks (bias, activation and
max pooling).

Feature maps are stored *channels-last*: (R, n, H, W, C) for R networks and n samples, so that a
stride-1 k x k convolution with zero padding p is one matrix product per network::

    Z[r, s, y, x, o] = sum_{i, j, c} A[r, s, y + i - p, x + j - p, c] * K[r, (i*k + j)*C + c, o]
                     = (cols[r] @ K[r])[s, y, x, o],      cols = im2col(A)

with the product done by BLAS (:func:`matmul`). The first conv of a network reads the input, which
all R networks share: :func:`input_conv_pool_activate` computes it directly (each input value is
used for all R*C_out outputs), which beats a BLAS product with only k*k*C inner terms.

Every kernel here is serial and releases the GIL; :func:`gdchaos.backend.threads.map_chunks` runs
them on chunks of samples side by side.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from gdchaos.backend.activations import IDENTITY, activation_code
from gdchaos.backend.jit import kernel
from gdchaos.backend.rows import activate_row, derivative_from_output
from gdchaos.backend.threads import output

_RELU = activation_code("relu")


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """C = A @ B by BLAS (NumPy's matmul: stacks of matrices, leading axes broadcast), into ``out``."""
    return np.matmul(a, b, out=out)


@kernel(nogil=True)
def _im2col(a, kernel, padding, cols):
    n_maps, height, width, channels = a.shape
    out_h, out_w = cols.shape[1], cols.shape[2]
    for b in range(n_maps):
        for y in range(out_h):
            for x in range(out_w):
                k = 0
                for i in range(kernel):
                    row = y + i - padding
                    for j in range(kernel):
                        col = x + j - padding
                        if 0 <= row < height and 0 <= col < width:
                            for c in range(channels):
                                cols[b, y, x, k + c] = a[b, row, col, c]
                        else:
                            for c in range(channels):
                                cols[b, y, x, k + c] = 0.0
                        k += channels


def im2col(a: np.ndarray, kernel: int, padding: int, out: np.ndarray | None = None) -> np.ndarray:
    """Patches of a (B, H, W, C) stack for a stride-1 k x k convolution with zero padding p.

    cols[b, y, x, (i*k + j)*C + c] = A[b, y + i - p, x + j - p, c] (0 outside the image);
    shape (B, Ho, Wo, k*k*C) with Ho = H + 2p - k + 1, Wo = W + 2p - k + 1.
    """
    n_maps, height, width, channels = a.shape
    out_h, out_w = height + 2 * padding - kernel + 1, width + 2 * padding - kernel + 1
    cols = output(out, (n_maps, out_h, out_w, kernel * kernel * channels), a.dtype)
    _im2col(a, kernel, padding, cols)
    return cols


@kernel(nogil=True)
def _col2im(cols, kernel, padding, out):
    n_maps, height, width, channels = out.shape
    out_h, out_w = cols.shape[1], cols.shape[2]
    out[:] = 0.0
    for b in range(n_maps):
        for y in range(out_h):
            for x in range(out_w):
                k = 0
                for i in range(kernel):
                    row = y + i - padding
                    for j in range(kernel):
                        col = x + j - padding
                        if 0 <= row < height and 0 <= col < width:
                            for c in range(channels):
                                out[b, row, col, c] += cols[b, y, x, k + c]
                        k += channels


def col2im(cols: np.ndarray, kernel: int, padding: int, height: int, width: int,
           out: np.ndarray | None = None) -> np.ndarray:
    """Adjoint of :func:`im2col`: dA[b, r, s, c] = sum of dcols over the patch entries that read
    A[b, r, s, c].

    Turns dL/dcols (B, Ho, Wo, k*k*C) into dL/dA (B, H, W, C); entries on the padding are dropped.
    """
    channels = cols.shape[3] // (kernel * kernel)
    out = output(out, (cols.shape[0], height, width, channels), cols.dtype)
    _col2im(cols, kernel, padding, out)
    return out


@njit(inline="always")
def _activate_row(z, bias, code, out):
    """out[c] = act(z[c] + bias[c]); the activation branch sits outside the loop over channels."""
    if code == IDENTITY:
        for c in range(out.size):
            out[c] = z[c] + bias[c]
    elif code == _RELU:
        for c in range(out.size):
            v = z[c] + bias[c]
            out[c] = v if v > 0.0 else 0.0
    else:
        activate_row(z, bias, code, out)


@kernel(nogil=True)
def _pool_activate(z, bias, code, size, out, arg):
    n_nets, n_samples, out_h, out_w, channels = out.shape
    row = np.empty(channels, dtype=out.dtype)
    for s in range(n_samples):  # samples outermost: z may hold all networks of a pixel side by side
        for r in range(n_nets):
            for y in range(out_h):
                for x in range(out_w):
                    best, where = out[r, s, y, x], arg[r, s, y, x]
                    for k in range(size * size):
                        _activate_row(z[r, s, y * size + k // size, x * size + k % size], bias[r],
                                      code, row)
                        if k == 0:
                            best[:] = row
                            where[:] = 0
                            continue
                        for c in range(channels):
                            # strict '>': ties keep the first maximum; a NaN always wins
                            if row[c] > best[c] or row[c] != row[c]:
                                best[c] = row[c]
                                where[c] = k


def pool_activate(z: np.ndarray, bias: np.ndarray, activation: str | None, size: int,
                  out: np.ndarray | None = None,
                  arg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A = act(Z + b) followed by s x s max pooling (stride s): the end of a conv block.

    P[r, n, y, x, c] = max_{i, j < s} act(Z[r, n, s*y + i, s*x + j, c] + b[r, c]) for Z of shape
    (R, n, H, W, C) (any strides), rows/columns beyond s*floor(H/s) dropped; ``activation`` None
    is the identity, ``size`` 1 no pooling. Returns P (R, n, H//s, W//s, C) and the window position
    i*s + j of the *first* maximum in row-major order (uint8), used by the backward passes.
    """
    n_nets, n_samples, height, width, channels = z.shape
    shape = (n_nets, n_samples, height // size, width // size, channels)
    out = output(out, shape, z.dtype)
    arg = output(arg, shape, np.uint8)
    _pool_activate(z, bias, activation_code(activation), size, out, arg)
    return out, arg


@kernel(nogil=True)
def _input_conv_pool_activate(x, kernel_cat, bias_cat, kernel, padding, code, size, out, arg):
    n_samples, height, width, c_in = x.shape
    n_nets, _, out_h, out_w, c_out = out.shape
    total = kernel_cat.shape[1]
    z, row = np.empty(total, dtype=out.dtype), np.empty(total, dtype=out.dtype)
    best, where = np.empty(total, dtype=out.dtype), np.empty(total, dtype=np.uint8)
    for s in range(n_samples):
        for y in range(out_h):
            for xx in range(out_w):
                for k in range(size * size):
                    top = y * size + k // size - padding
                    left = xx * size + k % size - padding
                    z[:] = 0.0
                    t = 0
                    for i in range(kernel):
                        for j in range(kernel):
                            if 0 <= top + i < height and 0 <= left + j < width:
                                for c in range(c_in):
                                    v = x[s, top + i, left + j, c]
                                    for o in range(total):
                                        z[o] += v * kernel_cat[t + c, o]
                            t += c_in
                    _activate_row(z, bias_cat, code, row)
                    if k == 0:
                        best[:] = row
                        where[:] = 0
                        continue
                    for o in range(total):
                        if row[o] > best[o] or row[o] != row[o]:  # as in _pool_activate
                            best[o] = row[o]
                            where[o] = k
                for r in range(n_nets):
                    for o in range(c_out):
                        out[r, s, y, xx, o] = best[r * c_out + o]
                        arg[r, s, y, xx, o] = where[r * c_out + o]


def input_conv_pool_activate(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, kernel_size: int,
                             padding: int, activation: str | None, size: int,
                             out: np.ndarray | None = None,
                             arg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A whole conv block (conv, act, pool) on an input x (n, H, W, C) shared by all R networks.

    Z[r, n, y, x, o] = b[r, o] + sum_{i, j, c} X[n, y + i - p, x + j - p, c] K[r, (i*k + j)*C + c, o]
    for K (R, k*k*C, C_out), computed directly for all networks at once (each input value is read
    once for R*C_out outputs), then :func:`pool_activate`: returns P (R, n, H'/s, W'/s, C_out) and
    the positions of the first maxima, without storing Z.
    """
    n_nets, depth, c_out = kernel.shape
    n_samples, height, width, _ = x.shape
    conv_h, conv_w = height + 2 * padding - kernel_size + 1, width + 2 * padding - kernel_size + 1
    shape = (n_nets, n_samples, conv_h // size, conv_w // size, c_out)
    out = output(out, shape, x.dtype)
    arg = output(arg, shape, np.uint8)
    kernel_cat = np.ascontiguousarray(kernel.transpose(1, 0, 2)).reshape(depth, n_nets * c_out)
    _input_conv_pool_activate(x, kernel_cat, bias.reshape(-1), kernel_size, padding,
                              activation_code(activation), size, out, arg)
    return out, arg


@kernel(nogil=True)
def _pool_activate_backward(grad, out, arg, code, size, dz, bias_grad):
    n_nets, n_samples, out_h, out_w, channels = grad.shape
    for r in range(n_nets):
        for s in range(n_samples):
            dz[r, s] = 0.0
            for y in range(out_h):
                for x in range(out_w):
                    for c in range(channels):
                        g = grad[r, s, y, x, c]
                        if code != IDENTITY:
                            g *= derivative_from_output(out[r, s, y, x, c], code)
                        where = arg[r, s, y, x, c]
                        dz[r, s, y * size + where // size, x * size + where % size, c] = g
                        bias_grad[r, c] += g


def pool_activate_backward(grad: np.ndarray, out: np.ndarray, arg: np.ndarray,
                           activation: str | None, size: int, height: int, width: int, *,
                           bias_grad: np.ndarray | None = None,
                           out_grad: np.ndarray | None = None) -> np.ndarray:
    """dL/dZ (R, n, H, W, C) of :func:`pool_activate` from dL/dP (R, n, H', W', C).

    dZ[r, n, s*y + i*, s*x + j*, c] = dL/dP[r, n, y, x, c] * act'(P[r, n, y, x, c]) at each window's
    first maximum (i*, j*), 0 elsewhere (act' from the output, e.g. 1 - P^2 for tanh). Adds
    db[r, c] = sum dZ[r, ..., c] into ``bias_grad`` (R, C) when given.
    """
    n_nets, n_samples, _, _, channels = grad.shape
    dz = output(out_grad, (n_nets, n_samples, height, width, channels), grad.dtype)
    if bias_grad is None:
        bias_grad = np.zeros((n_nets, channels), dtype=grad.dtype)
    _pool_activate_backward(grad, out, arg, activation_code(activation), size, dz, bias_grad)
    return dz


@kernel(nogil=True)
def _input_conv_backward(grad, out, arg, x, code, size, kernel, padding, kernel_grad, bias_grad):
    n_nets, n_samples, out_h, out_w, c_out = grad.shape
    height, width, c_in = x.shape[1], x.shape[2], x.shape[3]
    for r in range(n_nets):
        for s in range(n_samples):
            for y in range(out_h):
                for xx in range(out_w):
                    for o in range(c_out):
                        g = grad[r, s, y, xx, o]
                        if code != IDENTITY:
                            g *= derivative_from_output(out[r, s, y, xx, o], code)
                        if g == 0.0:  # ReLU: about half the windows
                            continue
                        bias_grad[r, o] += g
                        where = arg[r, s, y, xx, o]
                        top = y * size + where // size - padding
                        left = xx * size + where % size - padding
                        k = 0
                        for i in range(kernel):
                            for j in range(kernel):
                                if 0 <= top + i < height and 0 <= left + j < width:
                                    for c in range(c_in):
                                        kernel_grad[r, k + c, o] += g * x[s, top + i, left + j, c]
                                k += c_in


def input_conv_backward(grad: np.ndarray, out: np.ndarray, arg: np.ndarray, x: np.ndarray,
                        activation: str | None, size: int, kernel: int, padding: int,
                        kernel_grad: np.ndarray, bias_grad: np.ndarray) -> None:
    """Parameter gradients of a conv block (conv, act, pool) applied to the shared input x.

    With dZ as in :func:`pool_activate_backward`, nonzero only at the first maxima (r, n, Y, X, o):
    dK[r, (i*k + j)*C + c, o] += sum dZ[r, n, Y, X, o] * X[n, Y + i - p, X + j - p, c] and
    db[r, o] += sum dZ[r, n, Y, X, o], gathered from x (n, H, W, C) without forming dZ or patches.
    """
    _input_conv_backward(grad, out, arg, x, activation_code(activation), size, kernel, padding, kernel_grad,
                         bias_grad)
