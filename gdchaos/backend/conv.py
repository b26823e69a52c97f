"""CPU kernels of convolutional layers: im2col / col2im and non-overlapping max pooling.

Feature maps are stored *channels-last*, ``A`` of shape (B, H, W, C) where the leading axis B runs
over (network, sample) pairs, so that a 2-D convolution becomes one matrix product per network::

    Z[b, y, x, o] = sum_{i, j, c} A_pad[b, y + i, x + j, c] * K[i, j, c, o]
                  = (cols @ K_mat)[b, y, x, o]

with ``cols = im2col(A)`` of shape (B, Ho, Wo, k*k*C) (patch entries in (i, j, c) order, zero
padding outside the image) and ``K_mat`` the kernel reshaped to (k*k*C, C_out). The products
themselves are BLAS calls (:func:`~gdchaos.backend.dense.batched_matmul`); the kernels here move
the data. Every kernel is a parallel loop over the leading axis, so each output element is written
by one thread only and results do not depend on the number of threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _im2col(a, kernel, padding, cols):
    n_maps, height, width, channels = a.shape
    out_h, out_w = cols.shape[1], cols.shape[2]
    for b in prange(n_maps):
        for y in range(out_h):
            for x in range(out_w):
                k = 0
                for i in range(kernel):
                    row = y + i - padding
                    for j in range(kernel):
                        col = x + j - padding
                        inside = 0 <= row < height and 0 <= col < width
                        for c in range(channels):
                            cols[b, y, x, k] = a[b, row, col, c] if inside else 0.0
                            k += 1


def im2col(a: np.ndarray, kernel: int, padding: int) -> np.ndarray:
    """Patches of a (B, H, W, C) stack for a stride-1 k x k convolution with zero padding p.

    cols[b, y, x, (i*k + j)*C + c] = A[b, y + i - p, x + j - p, c] (0 outside the image);
    shape (B, Ho, Wo, k*k*C) with Ho = H + 2p - k + 1, Wo = W + 2p - k + 1.
    """
    n_maps, height, width, channels = a.shape
    out_h, out_w = height + 2 * padding - kernel + 1, width + 2 * padding - kernel + 1
    cols = np.empty((n_maps, out_h, out_w, kernel * kernel * channels), dtype=a.dtype)
    _im2col(a, kernel, padding, cols)
    return cols


@njit(parallel=True, cache=True)
def _col2im(cols, kernel, padding, out):
    n_maps, height, width, channels = out.shape
    out_h, out_w = cols.shape[1], cols.shape[2]
    for b in prange(n_maps):
        out[b] = 0.0
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


def col2im(cols: np.ndarray, kernel: int, padding: int, height: int, width: int) -> np.ndarray:
    """Adjoint of :func:`im2col`: G[b, r, s, c] = sum of dcols over every patch entry that read A[b, r, s, c].

    This turns dL/dcols (B, Ho, Wo, k*k*C) into dL/dA (B, H, W, C); padding entries are dropped.
    """
    n_maps = cols.shape[0]
    channels = cols.shape[3] // (kernel * kernel)
    out = np.empty((n_maps, height, width, channels), dtype=cols.dtype)
    _col2im(cols, kernel, padding, out)
    return out


@njit(parallel=True, cache=True)
def _maxpool(a, size, out, arg):
    n_maps, out_h, out_w, channels = out.shape
    for b in prange(n_maps):
        for y in range(out_h):
            for x in range(out_w):
                for c in range(channels):
                    best = a[b, y * size, x * size, c]
                    where = 0
                    for i in range(size):
                        for j in range(size):
                            value = a[b, y * size + i, x * size + j, c]
                            if value > best:  # strict: ties keep the first maximum
                                best = value
                                where = i * size + j
                    out[b, y, x, c] = best
                    arg[b, y, x, c] = where


def maxpool(a: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling over non-overlapping s x s windows (stride s) of a (B, H, W, C) stack.

    P[b, y, x, c] = max_{i, j < s} A[b, s*y + i, s*x + j, c]; rows and columns beyond s*floor(H/s)
    are dropped. Also returns the position i*s + j of the *first* maximum in row-major window order
    (uint8, same shape as P), which routes the gradient in :func:`maxpool_backward`.
    """
    n_maps, height, width, channels = a.shape
    shape = (n_maps, height // size, width // size, channels)
    out = np.empty(shape, dtype=a.dtype)
    arg = np.empty(shape, dtype=np.uint8)
    _maxpool(a, size, out, arg)
    return out, arg


@njit(parallel=True, cache=True)
def _maxpool_backward(grad, arg, size, out):
    n_maps, out_h, out_w, channels = grad.shape
    for b in prange(n_maps):
        out[b] = 0.0
        for y in range(out_h):
            for x in range(out_w):
                for c in range(channels):
                    where = arg[b, y, x, c]
                    out[b, y * size + where // size, x * size + where % size, c] = grad[b, y, x, c]


def maxpool_backward(grad: np.ndarray, arg: np.ndarray, size: int, height: int,
                     width: int) -> np.ndarray:
    """dL/dA (B, H, W, C) from dL/dP: each window's gradient goes to its first maximum, 0 elsewhere."""
    n_maps, _, _, channels = grad.shape
    out = np.empty((n_maps, height, width, channels), dtype=grad.dtype)
    _maxpool_backward(grad, arg, size, out)
    return out
