"""The MNIST first layer with its densest pixels through BLAS: time, and whether the bits hold.

MNIST's pixels with density >= ``--threshold`` carry most of the nonzeros; a product over them is
dense enough for BLAS, and the sparse kernels would keep only the rest. This times, on the
training set (6 networks 784-64 by default, 2 threads), medians of ``--repeats`` calls:

- the shipped sparse kernels over all pixels (``sparse_matmul``, ``sparse_transposed_matmul``);
- the split: one BLAS product over the dense pixels for all networks' columns at once, plus the
  sparse kernels over the remaining pixels;
- the same with one BLAS product per network (what keeps a network's bits independent of the
  networks batched with it).

Then it checks OpenBLAS itself for that independence: whether a product's columns (and its
transposed product's) have the same bits when computed alone, and with one BLAS thread.
Run:  python benchmarks/dense_columns.py [--networks 6] [--threshold 0.3] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from gdchaos import data
from gdchaos.backend import sparse


def median_seconds(call, repeats: int) -> float:
    """Median wall time of ``call()`` over ``repeats`` calls, after one untimed call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def same_bits(n: int, k: int, m: int, rng: np.random.Generator) -> dict[str, bool]:
    """Whether A @ B and A^T @ D, (n, k) @ (k, m), keep their bits for a column slice computed
    alone and with one BLAS thread."""
    a, b, d = rng.normal(size=(n, k)), rng.normal(size=(k, m)), rng.normal(size=(n, m))
    product, transposed = a @ b, a.T @ d
    columns = slice(m // 2, m)
    with threadpool_limits(1):
        one_thread = np.array_equal(product, a @ b) and np.array_equal(transposed, a.T @ d)
    return {"columns alone (A @ B)": np.array_equal(product[:, columns], a @ np.ascontiguousarray(b[:, columns])),
            "columns alone (A^T @ D)": np.array_equal(transposed[:, columns],
                                                       a.T @ np.ascontiguousarray(d[:, columns])),
            "one thread": one_thread}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--threshold", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    x = np.ascontiguousarray(data.load("mnist", args.data_dir)[0], dtype=np.float64)
    n, d = x.shape
    density = (x != 0).mean(axis=0)
    dense = np.flatnonzero(density >= args.threshold)
    rest = np.flatnonzero(density < args.threshold)
    share = np.count_nonzero(x[:, dense]) / np.count_nonzero(x)
    print(f"{dense.size} of {d} pixels have density >= {args.threshold}: {share:.0%} of the nonzeros")

    rng = np.random.default_rng(0)
    k = args.networks * args.hidden
    w_cat = rng.normal(size=(d, k))
    delta = rng.normal(size=(n, k))
    whole = sparse.to_sparse_rows(x)
    x_dense, x_rest = np.ascontiguousarray(x[:, dense]), np.ascontiguousarray(x[:, rest])
    rest_rows = sparse.to_sparse_rows(x_rest)
    w_dense, w_rest = np.ascontiguousarray(w_cat[dense]), np.ascontiguousarray(w_cat[rest])
    per_network = [np.ascontiguousarray(w_dense[:, r * args.hidden:(r + 1) * args.hidden])
                   for r in range(args.networks)]
    deltas = [np.ascontiguousarray(delta[:, r * args.hidden:(r + 1) * args.hidden]) for r in range(args.networks)]

    timings = {
        "forward, sparse kernel, all pixels": lambda: sparse.sparse_matmul(whole, 0, n, w_cat),
        "forward, BLAS dense pixels, one call": lambda: x_dense @ w_dense,
        "forward, BLAS dense pixels, a call per network": lambda: [x_dense @ w for w in per_network],
        "forward, sparse kernel, other pixels": lambda: sparse.sparse_matmul(rest_rows, 0, n, w_rest),
        "gradient, sparse kernel, all pixels": lambda: sparse.sparse_transposed_matmul(whole, 0, n, delta),
        "gradient, BLAS dense pixels, one call": lambda: x_dense.T @ delta,
        "gradient, BLAS dense pixels, a call per network": lambda: [x_dense.T @ g for g in deltas],
        "gradient, sparse kernel, other pixels": lambda: sparse.sparse_transposed_matmul(rest_rows, 0, n, delta),
    }
    for name, call in timings.items():
        print(f"{name:50s} {median_seconds(call, args.repeats):.4f} s")

    print("OpenBLAS, same bits?")
    for shape in [(n, dense.size, k), (10_000, dense.size, 36 * args.hidden), (700, 30, 300)]:
        print(f"  (n, k, m) = {shape}: {same_bits(*shape, rng)}")


if __name__ == "__main__":
    main()
