"""First layer of all networks on a mostly-zero shared input (MNIST: 81% of the pixels are 0).

The two largest products of an epoch are Z = X @ W_cat (forward) and G = X^T @ Delta (gradient
of the first weights), each 2 N d K flops for N samples, d inputs and K = R*h hidden units of all
networks. When X is sparse, gathering only the nonzero entries does a fraction (the density) of
that work. Both kernels here also fuse the element-wise work next to them:

- :func:`sparse_forward`:  A[r, n, u] = act(sum_j X[n, j] W1[r, j, u] + b1[r, u]), rows of X in CSR;
- :func:`sparse_backward`: Delta[r, n, u] = dL/dA[r, n, u] act'(A[r, n, u]), then
  dW1[r, j, u] += sum_n X[n, j] Delta[r, n, u] and db1[r, u] += sum_n Delta[r, n, u], with X
  stored column-wise within blocks of ``BLOCK`` samples so that a block of Delta stays in cache.

Both products run on tiles of 64 columns whose sums stay in vector registers
(:func:`gdchaos.backend.simd.accumulate_rows`), with the operand they gather in L1: the forward
takes the features in blocks of ``PIXEL_BLOCK`` (a 32-KB tile of W), the gradient the samples in
blocks of ``BLOCK`` (a 32-KB tile of Delta). Each output element is a sum in a fixed order (one
fused multiply-add per term, nonzeros in feature order, samples in order), so results do not
depend on the number of threads or on the tiling, and a network gives the same bits alone or
batched with others. They differ from the dense BLAS products by round-off.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from gdchaos.backend.activations import activation_code
from gdchaos.backend.jit import kernel
from gdchaos.backend.rows import activate_row, axpy, derivative_from_output, dot
from gdchaos.backend.simd import TILE, accumulate_rows, aligned_empty, aligned_zeros, padded
from gdchaos.backend.threads import num_threads, output

BLOCK = 64  # samples per column-wise block of X (a tile of Delta, BLOCK x TILE, 32 KB, stays in L1)
PIXEL_BLOCK = 64  # features per block of the forward (a tile of W, PIXEL_BLOCK x TILE, stays in L1)
MAX_DENSITY = 0.4  # inputs with more nonzeros than this use the dense BLAS products
MIN_FEATURES = 64  # narrower inputs (Iris, 4 features) gain nothing from sparsity
ROWS_PER_TASK = 64  # forward: samples handled by one task of the thread pool
PART_TILES = 3  # backward: tiles per thread's part at most (its gradient, d x 192, stays in L2)
TILE_COLUMNS = 384  # forward: columns of a group of networks handled in one pass over the samples


@dataclass(frozen=True, eq=False)
class SparseRows:
    """A shared input X (N, d) kept as its nonzero entries, in two orders.

    Row-wise (CSR): the nonzeros of sample n are ``values[indptr[n]:indptr[n+1]]`` at features
    ``indices[...]``, those in features [b*PIXEL_BLOCK, (b+1)*PIXEL_BLOCK) from ``pixel_ptr[n, b]`` to
    ``pixel_ptr[n, b+1]``. Block-wise: for block b of samples [b*BLOCK, (b+1)*BLOCK) and feature j, the
    nonzeros are ``block_values[p]`` for p in ``block_ptr[b*d + j] : block_ptr[b*d + j + 1]``, at
    samples ``b*BLOCK + block_samples[p]``.
    """

    n_samples: int
    n_features: int
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    pixel_ptr: np.ndarray
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
    n_pixel_blocks = -(-n_features // PIXEL_BLOCK)
    per_pixel_block = np.bincount(rows * n_pixel_blocks + columns // PIXEL_BLOCK,
                                  minlength=n_samples * n_pixel_blocks).reshape(n_samples, n_pixel_blocks)
    pixel_ptr = np.empty((n_samples, n_pixel_blocks + 1), dtype=np.int64)
    pixel_ptr[:, 0] = indptr[:-1]
    np.cumsum(per_pixel_block, axis=1, out=pixel_ptr[:, 1:])
    pixel_ptr[:, 1:] += indptr[:-1, None]
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
        indices=columns.astype(np.int32), values=np.ascontiguousarray(values), pixel_ptr=pixel_ptr,
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
def _product_rows(pixel_ptr, indices, values, first, last, w, z):
    """z[n - first, :] = sum_j X[n, j] w[j, :] for samples first <= n < last, ``w`` (d, T) and
    ``z`` flat (last - first, T), T a multiple of ``TILE``: tile by tile of columns, then block by
    block of ``PIXEL_BLOCK`` features (that tile of ``w``, 32 KB, stays in L1 across the samples)."""
    n_pixel_blocks = pixel_ptr.shape[1] - 1
    columns = w.shape[1]
    for c in range(0, columns, TILE):
        for b in range(n_pixel_blocks):
            for n in range(first, last):
                p0, p1 = pixel_ptr[n, b], pixel_ptr[n, b + 1]
                if b == 0 or p1 > p0:
                    row = (n - first) * columns + c
                    accumulate_rows(indices, values, p0, p1, w, columns, c, z[row:row + TILE], b > 0)


@kernel(parallel=True)
def _forward(pixel_ptr, indices, values, start, stop, w_blocks, bias, code, w2t, out, logits):
    n_nets, width = bias.shape
    n_classes = w2t.shape[1]
    n_groups, _, columns = w_blocks.shape
    per_group = -(-n_nets // n_groups)
    n_tasks = (stop - start + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for task in prange(n_tasks):
        z = aligned_zeros(ROWS_PER_TASK * columns, w_blocks)
        first = start + task * ROWS_PER_TASK
        last = min(stop, first + ROWS_PER_TASK)
        for group in range(n_groups):
            _product_rows(pixel_ptr, indices, values, first, last, w_blocks[group], z)
            for n in range(first, last):
                row = (n - first) * columns
                for q in range(min(per_group, n_nets - group * per_group)):
                    r = group * per_group + q
                    a = out[r, n - start]
                    activate_row(z[row + q * width:row + (q + 1) * width], bias[r], code, a)
                    for c in range(n_classes):
                        logits[r, n - start, c] = dot(a, w2t[r, c], width)


@kernel(parallel=True)
def _matmul(pixel_ptr, indices, values, start, stop, w_padded, out):
    columns, n_out = w_padded.shape[1], out.shape[1]
    n_tasks = (stop - start + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for task in prange(n_tasks):
        z = aligned_zeros(ROWS_PER_TASK * columns, w_padded)
        first = start + task * ROWS_PER_TASK
        last = min(stop, first + ROWS_PER_TASK)
        _product_rows(pixel_ptr, indices, values, first, last, w_padded, z)
        for n in range(first, last):
            out[n - start] = z[(n - first) * columns:(n - first) * columns + n_out]


def first_layer_blocks(w1: np.ndarray) -> np.ndarray:
    """The first layers W_1^(r) (R, d, h) in groups of networks, (G, d, T): group k holds networks
    k*g .. k*g + g - 1 side by side (zeros past the last network and up to T, the g*h columns
    rounded up to whole tiles of 64), with g*h <= ``TILE_COLUMNS`` where h allows; 64-byte aligned.
    A pass over the samples per group keeps the rows it reads in cache."""
    n_nets, n_in, width = w1.shape
    n_groups = -(-n_nets * width // max(width, TILE_COLUMNS - TILE_COLUMNS % width))
    per_group = -(-n_nets // n_groups)
    blocks = aligned_empty((n_groups, n_in, padded(per_group * width)), w1.dtype)
    blocks[:] = 0.0
    for group in range(n_groups):
        nets = w1[group * per_group:(group + 1) * per_group]
        blocks[group, :, :nets.shape[0] * width] = nets.transpose(1, 0, 2).reshape(n_in, -1)
    return blocks


def sparse_forward(rows: SparseRows, start: int, stop: int, w_blocks: np.ndarray, bias: np.ndarray,
                   activation: str, out: np.ndarray | None = None, w2: np.ndarray | None = None,
                   logits: np.ndarray | None = None) -> np.ndarray:
    """A[r, n, u] = act(sum_j X[start+n, j] W_1^(r)[j, u] + b[r, u]) for samples [start, stop).

    ``w_blocks`` from :func:`first_layer_blocks`, ``bias`` (R, h); returns A (R, n, h). With the
    next layer's weights ``w2`` (R, h, C), also Z_2[r, n, c] = sum_u A[r, n, u] w2[r, u, c] (no bias)
    into ``logits`` (R, n, C), while each row of A is in cache: a network with one hidden layer then
    never reads A again for its forward pass.
    """
    n_nets, width = bias.shape
    if out is None:
        out = np.empty((n_nets, stop - start, width), dtype=w_blocks.dtype)
    if w2 is None:
        w2 = np.empty((n_nets, width, 0), dtype=w_blocks.dtype)
        logits = np.empty((n_nets, stop - start, 0), dtype=w_blocks.dtype)
    _forward(rows.pixel_ptr, rows.indices, rows.values, start, stop, w_blocks, bias,
             activation_code(activation), np.ascontiguousarray(w2.transpose(0, 2, 1)), out, logits)
    return out


def sparse_matmul(rows: SparseRows, start: int, stop: int, w_cat: np.ndarray,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Z = X[start:stop] @ W_cat, (n, K): the product alone (Hessian-vector products need it)."""
    out = output(out, (stop - start, w_cat.shape[1]), w_cat.dtype)
    w_padded = aligned_empty((w_cat.shape[0], padded(w_cat.shape[1])), w_cat.dtype)
    w_padded[:, :w_cat.shape[1]] = w_cat
    w_padded[:, w_cat.shape[1]:] = 0.0
    _matmul(rows.pixel_ptr, rows.indices, rows.values, start, stop, w_padded, out)
    return out


@njit(inline="always")
def _scatter_tiles(block_ptr, block_samples, block_values, n_features, b, delta, n_tiles, g):
    """g[j, :] += sum_s X[b*BLOCK + s, j] delta[t, s, :] for the ``n_tiles`` tiles t of ``delta``
    (flat (n_tiles, BLOCK, TILE)) and of ``g`` (flat (d, n_tiles * TILE)), over the nonzeros of block b."""
    span = n_tiles * TILE
    for t in range(n_tiles):
        for j in range(n_features):
            p0, p1 = block_ptr[b * n_features + j], block_ptr[b * n_features + j + 1]
            if p1 > p0:
                row = j * span + t * TILE
                accumulate_rows(block_samples, block_values, p0, p1, delta, TILE, t * BLOCK * TILE,
                                g[row:row + TILE], True)


@njit(inline="always")
def _part_columns(part, n_parts, n_columns):
    """Columns [c0, c1) of a thread's part, whole tiles of ``TILE`` (``span`` columns with padding)."""
    n_tiles = (n_columns + TILE - 1) // TILE
    t0, t1 = part * n_tiles // n_parts, (part + 1) * n_tiles // n_parts
    return t0 * TILE, min(n_columns, t1 * TILE), (t1 - t0) * TILE


@njit(inline="always")
def _units(r, width, c0, c1):
    """Units [u0, u1) of network r whose columns r*width + u lie in [c0, c1)."""
    return max(c0, r * width) - r * width, min(c1, (r + 1) * width) - r * width


@njit(inline="always")
def _tile_index(k, sample):
    """Where column k of a part and row ``sample`` of a block sit in the part's flat tiles of Delta,
    (n_tiles, BLOCK, TILE)."""
    return ((k // TILE) * BLOCK + sample) * TILE + k % TILE


@njit(inline="always")
def _delta_row(grad_a, a, code, u0, u1, k0, sample, delta, gb):
    """Delta[u] = dL/dA[u] act'(A[u]) for u0 <= u < u1 into the part's tiles at columns k0 + u,
    and added into the bias gradient ``gb``."""
    for u in range(u0, u1):
        value = grad_a[u] * derivative_from_output(a[u], code)
        delta[_tile_index(k0 + u, sample)] = value
        gb[k0 + u] += value


@njit(inline="always")
def _add_part(g, gb, c0, c1, width, grad_w, grad_b):
    """grad_w[r, j, u] += g[j, c], grad_b[r, u] += gb[c] for the part's columns c = r*width + u - c0."""
    span = gb.size
    for r in range(c0 // width, (c1 + width - 1) // width):
        u0, u1 = _units(r, width, c0, c1)
        for u in range(u0, u1):
            grad_b[r, u] += gb[r * width + u - c0]
        for j in range(grad_w.shape[1]):
            for u in range(u0, u1):
                grad_w[r, j, u] += g[j * span + r * width + u - c0]


@kernel(parallel=True)
def _backward(block_ptr, block_samples, block_values, n_features, start, stop, grad_a, a, code,
              n_parts, grad_w, grad_b):
    n_nets, _, width = a.shape
    n_columns = n_nets * width
    first_block, last_block = start // BLOCK, (stop + BLOCK - 1) // BLOCK
    for part in prange(n_parts):
        c0, c1, span = _part_columns(part, n_parts, n_columns)
        g = aligned_zeros(n_features * span, grad_w)
        gb = np.zeros(span, dtype=grad_w.dtype)
        delta = aligned_zeros(span * BLOCK, grad_w)
        r0, r1 = c0 // width, (c1 + width - 1) // width
        for b in range(first_block, last_block):
            base = b * BLOCK
            for s in range(max(start, base), min(stop, base + BLOCK)):
                for r in range(r0, r1):
                    u0, u1 = _units(r, width, c0, c1)
                    _delta_row(grad_a[r, s - start], a[r, s - start], code, u0, u1, r * width - c0, s - base,
                               delta, gb)
            _scatter_tiles(block_ptr, block_samples, block_values, n_features, b, delta, span // TILE, g)
        _add_part(g, gb, c0, c1, width, grad_w, grad_b)


@kernel(parallel=True)
def _backward_output(block_ptr, block_samples, block_values, n_features, start, stop, delta_out, w2t,
                     a, code, n_parts, grad_w, grad_b, grad_w2):
    n_nets, _, width = a.shape
    n_classes = w2t.shape[1]
    n_columns = n_nets * width
    first_block, last_block = start // BLOCK, (stop + BLOCK - 1) // BLOCK
    for part in prange(n_parts):
        c0, c1, span = _part_columns(part, n_parts, n_columns)
        g = aligned_zeros(n_features * span, grad_w)
        gb = np.zeros(span, dtype=grad_w.dtype)
        g2 = np.zeros((n_classes, span), dtype=grad_w.dtype)
        grad_a = np.empty(width, dtype=grad_w.dtype)
        delta = aligned_zeros(span * BLOCK, grad_w)
        r0, r1 = c0 // width, (c1 + width - 1) // width
        for b in range(first_block, last_block):
            base = b * BLOCK
            for s in range(max(start, base), min(stop, base + BLOCK)):
                for r in range(r0, r1):
                    u0, u1 = _units(r, width, c0, c1)
                    k0 = r * width - c0
                    row = a[r, s - start]
                    out_error = delta_out[r, s - start]
                    grad_a[u0:u1] = 0.0
                    for c in range(n_classes):
                        axpy(out_error[c], w2t[r, c, u0:u1], grad_a[u0:u1])
                        axpy(out_error[c], row[u0:u1], g2[c, k0 + u0:k0 + u1])
                    _delta_row(grad_a, row, code, u0, u1, k0, s - base, delta, gb)
            _scatter_tiles(block_ptr, block_samples, block_values, n_features, b, delta, span // TILE, g)
        _add_part(g, gb, c0, c1, width, grad_w, grad_b)
        for k in range(c1 - c0):
            for c in range(n_classes):
                grad_w2[(c0 + k) // width, (c0 + k) % width, c] += g2[c, k]


@kernel(parallel=True)
def _transposed_matmul(block_ptr, block_samples, block_values, n_features, start, stop, delta_cat,
                       n_parts, out):
    n_columns = delta_cat.shape[1]
    first_block, last_block = start // BLOCK, (stop + BLOCK - 1) // BLOCK
    for part in prange(n_parts):
        c0, c1, span = _part_columns(part, n_parts, n_columns)
        g = aligned_zeros(n_features * span, out)
        delta = aligned_zeros(span * BLOCK, out)
        for b in range(first_block, last_block):
            base = b * BLOCK
            for s in range(max(start, base), min(stop, base + BLOCK)):
                for c in range(c0, c1):
                    delta[_tile_index(c - c0, s - base)] = delta_cat[s - start, c]
            _scatter_tiles(block_ptr, block_samples, block_values, n_features, b, delta, span // TILE, g)
        for j in range(n_features):
            for c in range(c0, c1):
                out[j, c] = g[j * span + c - c0]


def _check_blocks(rows: SparseRows, start: int, stop: int) -> None:
    if start % BLOCK or (stop % BLOCK and stop != rows.n_samples):
        raise ValueError(f"sparse: samples [{start}, {stop}) do not start and end on "
                         f"blocks of {BLOCK}")


def _n_parts(n_columns: int) -> int:
    """Column parts of the backward kernels, whole tiles of ``TILE`` each: one per thread where
    there are tiles enough, and at most ``PART_TILES`` tiles each (a part's gradient stays in cache)."""
    n_tiles = -(-n_columns // TILE)
    return max(1, min(num_threads(), n_tiles), -(-n_tiles // PART_TILES))


def sparse_backward_output(rows: SparseRows, start: int, stop: int, delta_out: np.ndarray, w2: np.ndarray,
                           a: np.ndarray, activation: str, grad_w: np.ndarray, grad_b: np.ndarray,
                           grad_w2: np.ndarray) -> None:
    """:func:`sparse_backward` of a network with one hidden layer, from the output layer's error.

    With Delta_2 = dL/dZ_2 (R, n, C) and the output weights ``w2`` (R, h, C): dL/dA = Delta_2 w2^T
    and dW2[r] += A[r]^T Delta_2[r] (into ``grad_w2`` (R, h, C)) are formed sample by sample inside
    the kernel, then dW1, db1 as :func:`sparse_backward`; neither (R, n, h) array is written.
    """
    _check_blocks(rows, start, stop)
    n_parts = _n_parts(a.shape[0] * a.shape[2])
    _backward_output(rows.block_ptr, rows.block_samples, rows.block_values, rows.n_features, start, stop,
                     delta_out, np.ascontiguousarray(w2.transpose(0, 2, 1)), a, activation_code(activation),
                     n_parts, grad_w, grad_b, grad_w2)


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
