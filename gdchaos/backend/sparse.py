"""First layer of all networks on a mostly-zero shared input (MNIST: 81% of the pixels are 0).

The two largest products of an epoch are Z = X @ W_cat (forward) and G = X^T @ Delta (gradient
of the first weights), each 2 N d K flops for N samples, d inputs and K = R*h hidden units of all
networks. When X is sparse, gathering only the nonzero entries does a fraction (the density) of
that work. Both kernels here also fuse the element-wise work next to them:

- :func:`sparse_forward`:  A[r, n, u] = act(sum_j X[n, j] W1[r, j, u] + b1[r, u]), rows of X in CSR;
- :func:`sparse_backward`: Delta[r, n, u] = dL/dA[r, n, u] act'(A[r, n, u]), then
  dW1[r, j, u] += sum_n X[n, j] Delta[r, n, u] and db1[r, u] += sum_n Delta[r, n, u], with X
  stored column-wise within blocks of ``BLOCK`` samples so that a block of Delta stays in cache.

Each output element is a sum in a fixed order (samples and nonzeros in storage order, four
terms at a time), so results do not depend on the number of threads, and a network gives the
same bits alone or batched with others. They differ from the dense BLAS products by round-off.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from gdchaos.backend.activations import activation_code
from gdchaos.backend.jit import kernel
from gdchaos.backend.rows import activate_row, derivative_from_output
from gdchaos.backend.threads import num_threads, output

BLOCK = 64  # samples per column-wise block of X (a block of Delta, BLOCK x K, stays in cache)
MAX_DENSITY = 0.4  # inputs with more nonzeros than this use the dense BLAS products
MIN_FEATURES = 64  # narrower inputs (Iris, 4 features) gain nothing from sparsity
ROWS_PER_TASK = 64  # forward: samples handled by one task of the thread pool
COLUMNS_PER_PART = 128  # backward: columns of K below which splitting between threads stops paying
TILE_COLUMNS = 384  # columns handled in one pass over the samples (docs/performance.md)


@dataclass(frozen=True, eq=False)
class SparseRows:
    """A shared input X (N, d) kept as its nonzero entries, in two orders.

    Row-wise (CSR): the nonzeros of sample n are ``values[indptr[n]:indptr[n+1]]`` at features
    ``indices[...]``. Block-wise: for block b of samples [b*BLOCK, (b+1)*BLOCK) and feature j, the
    nonzeros are ``block_values[p]`` for p in ``block_ptr[b*d + j] : block_ptr[b*d + j + 1]``, at
    samples ``b*BLOCK + block_samples[p]``.
    """

    n_samples: int
    n_features: int
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    block_ptr: np.ndarray
    block_samples: np.ndarray
    block_values: np.ndarray

    @property
    def density(self) -> float:
        """Fraction of the entries of X that are nonzero."""
        return self.values.size / max(1, self.n_samples * self.n_features)


def to_sparse_rows(x: np.ndarray) -> SparseRows:
    """Both storage orders of the nonzero entries of ``x`` (N, d)."""
    n_samples, n_features = x.shape
    nonzero = x != 0
    indptr = np.zeros(n_samples + 1, dtype=np.int64)
    np.cumsum(nonzero.sum(axis=1), out=indptr[1:])
    rows, columns = np.nonzero(nonzero)
    values = x[rows, columns]
    n_blocks = -(-n_samples // BLOCK)
    # block-wise order: by (block, feature), then sample; np.nonzero gives (sample, feature) order,
    # which a stable sort on (block, feature) keeps within each key
    key = (rows // BLOCK) * n_features + columns
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key, minlength=n_blocks * n_features)
    block_ptr = np.zeros(n_blocks * n_features + 1, dtype=np.int64)
    np.cumsum(counts, out=block_ptr[1:])
    return SparseRows(
        n_samples=n_samples, n_features=n_features, indptr=indptr,
        indices=columns.astype(np.int32), values=np.ascontiguousarray(values),
        block_ptr=block_ptr, block_samples=(rows[order] % BLOCK).astype(np.int32),
        block_values=np.ascontiguousarray(values[order]))


class _Cache:
    """The sparse form of the last few inputs seen, keyed by identity and a sample of values.

    Data sets are read-only inputs of an evaluation; the fingerprint (shape, address and 4096
    evenly spaced entries) guards against reuse of a freed address or an edit in place.
    """

    SIZE = 4

    def __init__(self) -> None:
        self._entries: list[tuple[weakref.ref, tuple, SparseRows | None]] = []

    @staticmethod
    def _fingerprint(x: np.ndarray) -> tuple:
        sample = x.reshape(-1)[:: max(1, x.size // 4096)]
        return x.shape, x.dtype.str, x.__array_interface__["data"][0], sample.tobytes()

    def get(self, x: np.ndarray) -> SparseRows | None:
        fingerprint = self._fingerprint(x)
        for ref, key, rows in self._entries:
            if ref() is x and key == fingerprint:
                return rows
        rows = None
        if x.shape[1] >= MIN_FEATURES and x.size and np.count_nonzero(x) <= MAX_DENSITY * x.size:
            rows = to_sparse_rows(x)
        self._entries = [(weakref.ref(x), fingerprint, rows), *self._entries[: self.SIZE - 1]]
        return rows


_CACHE = _Cache()


def sparse_rows(x: np.ndarray) -> SparseRows | None:
    """The cached sparse form of a shared input ``x`` (N, d), or None when it is not worth it.

    Sparse when at least ``MIN_FEATURES`` features and at most ``MAX_DENSITY`` nonzeros; ``x``
    must be C-contiguous (a data set, or a view that does not change between calls).
    """
    if x.ndim != 2 or not x.flags.c_contiguous:
        return None
    return _CACHE.get(x)


@njit(inline="always")
def _gather_row(indptr, indices, values, n, w, z):
    """z = sum_j X[n, j] w[j, :] over the nonzeros of sample n, four at a time."""
    z[:] = 0.0
    p, end = indptr[n], indptr[n + 1]
    while p + 4 <= end:
        j0, j1, j2, j3 = indices[p], indices[p + 1], indices[p + 2], indices[p + 3]
        v0, v1, v2, v3 = values[p], values[p + 1], values[p + 2], values[p + 3]
        r0, r1, r2, r3 = w[j0], w[j1], w[j2], w[j3]
        for k in range(z.size):
            z[k] += (v0 * r0[k] + v1 * r1[k]) + (v2 * r2[k] + v3 * r3[k])
        p += 4
    while p < end:
        j0, v0 = indices[p], values[p]
        r0 = w[j0]
        for k in range(z.size):
            z[k] += v0 * r0[k]
        p += 1


@njit(inline="always")
def _scatter_block(block_ptr, block_samples, block_values, n_features, b, delta, g):
    """g[j, :] += sum_s X[b*BLOCK + s, j] delta[s, :] over the nonzeros of block b, four at a time."""
    for j in range(n_features):
        p, end = block_ptr[b * n_features + j], block_ptr[b * n_features + j + 1]
        while p + 4 <= end:
            s0, s1 = block_samples[p], block_samples[p + 1]
            s2, s3 = block_samples[p + 2], block_samples[p + 3]
            v0, v1, v2, v3 = block_values[p], block_values[p + 1], block_values[p + 2], block_values[p + 3]
            for c in range(g.shape[1]):
                g[j, c] += (v0 * delta[s0, c] + v1 * delta[s1, c]) + (v2 * delta[s2, c] + v3 * delta[s3, c])
            p += 4
        while p < end:
            s0, v0 = block_samples[p], block_values[p]
            for c in range(g.shape[1]):
                g[j, c] += v0 * delta[s0, c]
            p += 1


@kernel(parallel=True)
def _forward(indptr, indices, values, start, stop, w_blocks, bias, code, out):
    n_nets, width = bias.shape
    n_groups, _, tile = w_blocks.shape
    per_group = tile // width
    n_tasks = (stop - start + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for task in prange(n_tasks):
        z = np.empty(tile, dtype=out.dtype)
        first = start + task * ROWS_PER_TASK
        for group in range(n_groups):
            w = w_blocks[group]
            for n in range(first, min(stop, first + ROWS_PER_TASK)):
                _gather_row(indptr, indices, values, n, w, z)
                for q in range(min(per_group, n_nets - group * per_group)):
                    r = group * per_group + q
                    activate_row(z[q * width:(q + 1) * width], bias[r], code, out[r, n - start])


@kernel(parallel=True)
def _matmul(indptr, indices, values, start, stop, w_cat, out):
    n_tasks = (stop - start + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for task in prange(n_tasks):
        first = start + task * ROWS_PER_TASK
        for n in range(first, min(stop, first + ROWS_PER_TASK)):
            _gather_row(indptr, indices, values, n, w_cat, out[n - start])


def first_layer_blocks(w1: np.ndarray) -> np.ndarray:
    """The first layers W_1^(r) (R, d, h) in groups of networks, (G, d, g*h): group k holds networks
    k*g .. k*g + g - 1 side by side (zeros past the last network), with g*h <= ``TILE_COLUMNS``
    where h allows. A pass over the samples per group keeps the rows it reads in cache."""
    n_nets, n_in, width = w1.shape
    n_groups = -(-n_nets * width // max(width, TILE_COLUMNS - TILE_COLUMNS % width))
    per_group = -(-n_nets // n_groups)
    blocks = np.zeros((n_groups, n_in, per_group * width), dtype=w1.dtype)
    for group in range(n_groups):
        nets = w1[group * per_group:(group + 1) * per_group]
        blocks[group, :, :nets.shape[0] * width] = nets.transpose(1, 0, 2).reshape(n_in, -1)
    return blocks


def sparse_forward(rows: SparseRows, start: int, stop: int, w_blocks: np.ndarray, bias: np.ndarray,
                   activation: str, out: np.ndarray | None = None) -> np.ndarray:
    """A[r, n, u] = act(sum_j X[start+n, j] W_1^(r)[j, u] + b[r, u]) for samples [start, stop).

    ``w_blocks`` from :func:`first_layer_blocks`, ``bias`` (R, h); returns A (R, n, h).
    """
    n_nets, width = bias.shape
    if out is None:
        out = np.empty((n_nets, stop - start, width), dtype=w_blocks.dtype)
    _forward(rows.indptr, rows.indices, rows.values, start, stop, w_blocks, bias,
             activation_code(activation), out)
    return out


def sparse_matmul(rows: SparseRows, start: int, stop: int, w_cat: np.ndarray,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Z = X[start:stop] @ W_cat, (n, K): the product alone (Hessian-vector products need it)."""
    out = output(out, (stop - start, w_cat.shape[1]), w_cat.dtype)
    _matmul(rows.indptr, rows.indices, rows.values, start, stop, w_cat, out)
    return out


@kernel(parallel=True)
def _backward(block_ptr, block_samples, block_values, n_features, start, stop, grad_a, a, code,
              n_parts, grad_w, grad_b):
    n_nets, _, width = a.shape
    n_columns = n_nets * width
    first_block, last_block = start // BLOCK, (stop + BLOCK - 1) // BLOCK
    for part in prange(n_parts):
        c0, c1 = part * n_columns // n_parts, (part + 1) * n_columns // n_parts
        span = c1 - c0
        g = np.zeros((n_features, span), dtype=grad_w.dtype)
        gb = np.zeros(span, dtype=grad_w.dtype)
        delta = np.zeros((BLOCK, span), dtype=grad_w.dtype)
        for b in range(first_block, last_block):
            base = b * BLOCK
            for s in range(max(start, base), min(stop, base + BLOCK)):
                for r in range(c0 // width, (c1 + width - 1) // width):
                    u0, u1 = max(c0, r * width) - r * width, min(c1, (r + 1) * width) - r * width
                    offset = r * width - c0
                    for u in range(u0, u1):
                        value = grad_a[r, s - start, u] * derivative_from_output(a[r, s - start, u], code)
                        delta[s - base, offset + u] = value
                        gb[offset + u] += value
            _scatter_block(block_ptr, block_samples, block_values, n_features, b, delta, g)
        for c in range(span):
            r, u = (c0 + c) // width, (c0 + c) % width
            grad_b[r, u] += gb[c]
            for j in range(n_features):
                grad_w[r, j, u] += g[j, c]


@kernel(parallel=True)
def _transposed_matmul(block_ptr, block_samples, block_values, n_features, start, stop, delta_cat,
                       n_parts, out):
    n_columns = delta_cat.shape[1]
    first_block, last_block = start // BLOCK, (stop + BLOCK - 1) // BLOCK
    for part in prange(n_parts):
        c0, c1 = part * n_columns // n_parts, (part + 1) * n_columns // n_parts
        g = np.zeros((n_features, c1 - c0), dtype=out.dtype)
        delta = np.zeros((BLOCK, c1 - c0), dtype=out.dtype)
        for b in range(first_block, last_block):
            base = b * BLOCK
            for s in range(max(start, base), min(stop, base + BLOCK)):
                delta[s - base] = delta_cat[s - start, c0:c1]
            _scatter_block(block_ptr, block_samples, block_values, n_features, b, delta, g)
        out[:, c0:c1] = g


def _check_blocks(rows: SparseRows, start: int, stop: int) -> None:
    if start % BLOCK or (stop % BLOCK and stop != rows.n_samples):
        raise ValueError(f"sparse: samples [{start}, {stop}) do not start and end on "
                         f"blocks of {BLOCK}")


def _n_parts(n_columns: int) -> int:
    """Column parts of the backward kernels: one per thread while each keeps enough columns, and
    at most ``TILE_COLUMNS`` columns each (a part's gradient rows stay in cache)."""
    return max(1, min(num_threads(), n_columns // COLUMNS_PER_PART), -(-n_columns // TILE_COLUMNS))


def sparse_transposed_matmul(rows: SparseRows, start: int, stop: int,
                             delta_cat: np.ndarray) -> np.ndarray:
    """G = X[start:stop]^T @ Delta_cat, (d, K), for Delta_cat (n, K); blocks as :func:`sparse_backward`."""
    _check_blocks(rows, start, stop)
    out = np.empty((rows.n_features, delta_cat.shape[1]), dtype=delta_cat.dtype)
    _transposed_matmul(rows.block_ptr, rows.block_samples, rows.block_values, rows.n_features,
                       start, stop, delta_cat, _n_parts(delta_cat.shape[1]), out)
    return out


def sparse_backward(rows: SparseRows, start: int, stop: int, grad_a: np.ndarray, a: np.ndarray,
                    activation: str, grad_w: np.ndarray, grad_b: np.ndarray) -> None:
    """Add the first layer's gradients of samples [start, stop) into ``grad_w``, ``grad_b``.

    Delta = dL/dA * act'(A) (act' from the stored output A, both (R, n, h)), then
    dW1[r] += X[start:stop]^T Delta[r] (``grad_w`` (R, d, h)) and db1[r] += sum_n Delta[r, n].
    ``start`` and ``stop`` must be multiples of ``BLOCK`` (or ``stop`` = N). The R*h columns are split between threads.
    """
    _check_blocks(rows, start, stop)
    n_parts = _n_parts(a.shape[0] * a.shape[2])
    _backward(rows.block_ptr, rows.block_samples, rows.block_values, rows.n_features, start, stop,
              grad_a, a, activation_code(activation), n_parts, grad_w, grad_b)
