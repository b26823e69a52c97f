"""Where the sparse kernels' time goes on MNIST: the gather, tanh, the fused output layer.

Times, on the 60,000 training images and 6 networks 784-64-10 (one thread pool, median of 7
calls): the forward with ReLU (the gather alone, ReLU costing next to nothing), with tanh, with
tanh and the logits; the gradient from dL/dA, and from the output layer's error Delta_2 (dL/dA
and dW2 formed inside the kernel). Run:  python benchmarks/sparse_parts.py [--data-dir DIR]
"""
from __future__ import annotations

import argparse

import gdchaos  # noqa: F401  (before NumPy: its OpenBLAS setting, as in the gdchaos command)
import numpy as np
from dense_columns import median_seconds  # a sibling script: benchmarks/ is on sys.path when run

from gdchaos import data
from gdchaos.backend import sparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    x, _, _, _ = data.load("mnist", args.data_dir)
    rows = sparse.sparse_rows(x)
    n_nets, n_in, width, n_classes, n = 6, 784, 64, 10, x.shape[0]
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(n_nets, n_in, width)) / 28, np.zeros((n_nets, width))
    w2 = rng.normal(size=(n_nets, width, n_classes))
    blocks = sparse.first_layer_blocks(w1)
    a, logits = np.empty((n_nets, n, width)), np.empty((n_nets, n, n_classes))
    grad_a, delta_out = rng.normal(size=a.shape), rng.normal(size=logits.shape) / n
    grad_w, grad_b, grad_w2 = np.zeros_like(w1), np.zeros_like(b1), np.zeros_like(w2)
    cases = {
        "forward, gather + relu": lambda: sparse.sparse_forward(rows, 0, n, blocks, b1, "relu", out=a),
        "forward, gather + tanh": lambda: sparse.sparse_forward(rows, 0, n, blocks, b1, "tanh", out=a),
        "forward, + logits": lambda: sparse.sparse_forward(rows, 0, n, blocks, b1, "tanh", out=a, w2=w2,
                                                           logits=logits),
        "gradient from dL/dA": lambda: sparse.sparse_backward(rows, 0, n, grad_a, a, "tanh", grad_w, grad_b),
        "gradient from Delta_2": lambda: sparse.sparse_backward_output(rows, 0, n, delta_out, w2, a, "tanh",
                                                                       grad_w, grad_b, grad_w2),
    }
    for name, call in cases.items():
        print(f"{name:24s} {median_seconds(call, 7):.4f} s")


if __name__ == "__main__":
    main()
