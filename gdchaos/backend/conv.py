"""CPU kernels of convolutional networks: im2col / col2im, fused bias + activation + max pooling,
and a thread pool that runs chunks of samples side by side.

Feature maps are stored *channels-last*: (R, n, H, W, C) for R networks and n samples, so that a
stride-1 k x k convolution with zero padding p is one matrix product per network::

    Z[r, s, y, x, o] = sum_{i, j, c} A[r, s, y + i - p, x + j - p, c] * K[r, (i*k + j)*C + c, o]
                     = (cols[r] @ K[r])[s, y, x, o],      cols = im2col(A)

The products are BLAS calls (:mod:`gdchaos.backend.dense`); the kernels here move data.

Threading: every kernel here is serial and releases the GIL. :func:`map_chunks` runs a function
over chunks of samples on ``num_threads()`` worker threads, each running single-threaded kernels
and single-threaded BLAS on data small enough to stay in cache. That beats parallelising each
kernel (thread pools of Numba and BLAS spin against each other on small machines) and its results
do not depend on the number of threads: chunks are combined in order by the caller.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from itertools import islice
from typing import TypeVar

import numba
import numpy as np
from numba import njit
from threadpoolctl import ThreadpoolController

from gdchaos.backend.dense import _activate, _derivative_from_output, activation_code

IDENTITY = -1  # activation code of "no activation"
Result = TypeVar("Result")


def _code(activation: str | None) -> int:
    return IDENTITY if activation is None else activation_code(activation)


@njit(nogil=True, cache=True)
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


@njit(nogil=True, cache=True)
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


def col2im(cols: np.ndarray, kernel: int, padding: int, height: int, width: int) -> np.ndarray:
    """Adjoint of :func:`im2col`: dA[b, r, s, c] = sum of dcols over the patch entries that read A[b, r, s, c].

    Turns dL/dcols (B, Ho, Wo, k*k*C) into dL/dA (B, H, W, C); entries on the padding are dropped.
    """
    channels = cols.shape[3] // (kernel * kernel)
    out = np.empty((cols.shape[0], height, width, channels), dtype=cols.dtype)
    _col2im(cols, kernel, padding, out)
    return out


@njit(nogil=True, cache=True)
def _pool_activate(z, bias, code, size, out, arg):
    n_nets, n_samples, _, _, channels = z.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for r in range(n_nets):
        for s in range(n_samples):
            for y in range(out_h):
                for x in range(out_w):
                    for i in range(size):
                        for j in range(size):
                            row, col = y * size + i, x * size + j
                            for c in range(channels):
                                v = z[r, s, row, col, c] + bias[r, c]
                                if code != IDENTITY:
                                    v = _activate(v, code)
                                # strict '>': ties keep the first maximum; a NaN always wins
                                if (i == 0 and j == 0) or v > out[r, s, y, x, c] or v != v:
                                    out[r, s, y, x, c] = v
                                    arg[r, s, y, x, c] = i * size + j


def pool_activate(z: np.ndarray, bias: np.ndarray, activation: str | None,
                  size: int) -> tuple[np.ndarray, np.ndarray]:
    """A = act(Z + b) followed by s x s max pooling (stride s): the end of a conv block.

    P[r, n, y, x, c] = max_{i, j < s} act(Z[r, n, s*y + i, s*x + j, c] + b[r, c]) for Z of shape
    (R, n, H, W, C) (any strides), rows/columns beyond s*floor(H/s) dropped; ``activation`` None
    is the identity, ``size`` 1 no pooling. Returns P (R, n, H//s, W//s, C) and the window position
    i*s + j of the *first* maximum in row-major order (uint8), used by the backward pass.
    """
    n_nets, n_samples, height, width, channels = z.shape
    shape = (n_nets, n_samples, height // size, width // size, channels)
    out = np.empty(shape, dtype=z.dtype)
    arg = np.empty(shape, dtype=np.uint8)
    _pool_activate(z, bias, _code(activation), size, out, arg)
    return out, arg


@njit(nogil=True, cache=True)
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
                            g *= _derivative_from_output(out[r, s, y, x, c], code)
                        where = arg[r, s, y, x, c]
                        dz[r, s, y * size + where // size, x * size + where % size, c] = g
                        bias_grad[r, c] += g


def pool_activate_backward(grad: np.ndarray, out: np.ndarray, arg: np.ndarray,
                           activation: str | None, size: int, height: int, width: int, *,
                           bias_grad: np.ndarray | None = None,
                           concatenate: bool = False) -> np.ndarray:
    """dL/dZ of :func:`pool_activate` from dL/dP (R, n, H', W', C).

    dZ[r, n, s*y + i*, s*x + j*, c] = dL/dP[r, n, y, x, c] * act'(P[r, n, y, x, c]) at each window's
    first maximum (i*, j*), 0 elsewhere (act' from the output, e.g. 1 - P^2 for tanh). Adds
    db[r, c] = sum dZ[r, ..., c] into ``bias_grad`` (R, C) when given. Returns dZ as (R, n, H, W, C),
    or with ``concatenate`` as (n*H*W, R*C), all networks side by side.
    """
    n_nets, n_samples, _, _, channels = grad.shape
    if concatenate:
        buffer = np.empty((n_samples, height, width, n_nets, channels), dtype=grad.dtype)
        dz = buffer.transpose(3, 0, 1, 2, 4)
    else:
        buffer = dz = np.empty((n_nets, n_samples, height, width, channels), dtype=grad.dtype)
    if bias_grad is None:
        bias_grad = np.zeros((n_nets, channels), dtype=grad.dtype)
    _pool_activate_backward(grad, out, arg, _code(activation), size, dz, bias_grad)
    return buffer.reshape(-1, n_nets * channels) if concatenate else dz


@cache
def _executor(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads whose Numba kernels run on one thread (a thread-local setting)."""
    return ThreadPoolExecutor(workers, thread_name_prefix="gdchaos-chunk",
                              initializer=numba.set_num_threads, initargs=(1,))


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def map_chunks(function: Callable[[int, int], Result], n_items: int, chunk: int) -> Iterator[Result]:
    """Yield function(start, stop) for the chunks [0, c), [c, 2c), ... of range(n_items), in order.

    The calls run on ``numba.get_num_threads()`` worker threads with single-threaded BLAS (a
    process-wide limit while the iterator runs) and at most two chunks in flight per thread, so
    memory stays bounded; consume the iterator to the end.
    """
    bounds = iter([(start, min(start + chunk, n_items)) for start in range(0, n_items, chunk)])
    workers = max(1, numba.get_num_threads())
    executor = _executor(workers)
    with _blas().limit(limits=1, user_api="blas"):
        pending = deque(executor.submit(function, *b) for b in islice(bounds, 2 * workers))
        while pending:
            result = pending.popleft().result()
            following = next(bounds, None)
            if following is not None:
                pending.append(executor.submit(function, *following))
            yield result
