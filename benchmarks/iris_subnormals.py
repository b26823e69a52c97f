"""Gradient passes of the Iris kernel for networks of growing weights (one thread): with weights x100
and more a diverged network's softmax outputs and their products are subnormal, which the kernels
flush to zero (backend.vector.flush_subnormals); without it each such multiply took a microcode assist.

Run:  python benchmarks/iris_subnormals.py
"""
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
import numpy as np  # noqa: E402

from gdchaos.backend import small  # noqa: E402

rng = np.random.default_rng(0)
n_nets = 2400
x, y = rng.normal(size=(120, 4)), rng.integers(0, 3, 120)
weights = rng.normal(size=(n_nets, 83))
for scale in (0.5, 3, 20, 100, 1000):
    theta = weights * scale
    small.small_mlp(theta[:10], x, y, (4, 10, 3), "tanh", 1 / 120, small.GRADIENT)
    times = []
    for _ in range(7):
        start = time.perf_counter()
        small.small_mlp(theta, x, y, (4, 10, 3), "tanh", 1 / 120, small.GRADIENT)
        times.append((time.perf_counter() - start) / n_nets * 1e6)
    print(f"weights x{scale}: min {min(times):.2f} us, median {np.median(times):.2f} us per gradient pass")
