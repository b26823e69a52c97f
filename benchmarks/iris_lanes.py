"""Networks on the SIMD lanes, measured against the shipped whole-network kernel (an experiment).

The shipped kernel (``backend.small``) runs one network at a time with its samples on the SIMD
lanes. This script times the other layout for a 4-10-3 tanh network on 120 samples: LANES
networks side by side, parameters as (P, LANES) arrays, every operation a plain Numba loop over
the lanes; it checks the loss and gradient against ``small_mlp`` and prints microseconds per
network pass (loss and gradient) of both, one thread. Run:  python benchmarks/iris_lanes.py
"""
from __future__ import annotations

import time

import numba
import numpy as np

from gdchaos.backend import small, vecmath
from gdchaos.backend.jit import kernel

LANES = 16  # LLVM's loop vectoriser leaves loops of fewer than 16 iterations scalar
LOG_EVERY = 16  # samples between logarithms of the running product of softmax sums


@kernel()
def _pass(pl, gl, x_t, labels, n_in, n_hid, n_out, scale, loss):
    """Loss and gradient of LANES one-hidden-layer tanh networks, sample by sample."""
    w1, b1 = 0, n_in * n_hid
    w2 = b1 + n_hid
    b2 = w2 + n_hid * n_out
    a, z, d = np.empty((n_hid, LANES)), np.empty((n_out, LANES)), np.empty((n_out, LANES))
    top, total, product = np.empty(LANES), np.empty(LANES), np.ones(LANES)
    gl[:] = 0.0
    loss[:] = 0.0
    for n in range(x_t.shape[1]):
        for j in range(n_hid):
            for lane in range(LANES):
                a[j, lane] = pl[b1 + j, lane]
            for k in range(n_in):
                for lane in range(LANES):
                    a[j, lane] += x_t[k, n] * pl[w1 + k * n_hid + j, lane]
            for lane in range(LANES):
                a[j, lane] = vecmath.tanh(a[j, lane])
        for c in range(n_out):
            for lane in range(LANES):
                z[c, lane] = pl[b2 + c, lane]
            for j in range(n_hid):
                for lane in range(LANES):
                    z[c, lane] += a[j, lane] * pl[w2 + j * n_out + c, lane]
        top[:] = z[0]
        for c in range(1, n_out):
            for lane in range(LANES):
                top[lane] = max(top[lane], z[c, lane])
        total[:] = 0.0
        for c in range(n_out):
            for lane in range(LANES):
                d[c, lane] = vecmath.exp_nonpositive(z[c, lane] - top[lane])
                total[lane] += d[c, lane]
        y = labels[n]
        for lane in range(LANES):
            loss[lane] += top[lane] - z[y, lane]
            product[lane] *= total[lane]
            for c in range(n_out):
                d[c, lane] *= scale / total[lane]
            d[y, lane] -= scale
        if n % LOG_EVERY == LOG_EVERY - 1:
            for lane in range(LANES):
                loss[lane] += np.log(product[lane])
                product[lane] = 1.0
        for c in range(n_out):
            for lane in range(LANES):
                gl[b2 + c, lane] += d[c, lane]
        for j in range(n_hid):
            total[:] = 0.0
            for c in range(n_out):
                for lane in range(LANES):
                    gl[w2 + j * n_out + c, lane] += a[j, lane] * d[c, lane]
                    total[lane] += pl[w2 + j * n_out + c, lane] * d[c, lane]
            for lane in range(LANES):
                total[lane] *= 1.0 - a[j, lane] * a[j, lane]
                gl[b1 + j, lane] += total[lane]
            for k in range(n_in):
                for lane in range(LANES):
                    gl[w1 + k * n_hid + j, lane] += x_t[k, n] * total[lane]
    for lane in range(LANES):
        loss[lane] += np.log(product[lane])


@kernel()
def _repeat(pl, gl, x_t, labels, scale, loss, repeats):
    for _ in range(repeats):
        _pass(pl, gl, x_t, labels, 4, 10, 3, scale, loss)


def main() -> None:
    numba.set_num_threads(1)
    rng = np.random.default_rng(0)
    n, sizes = 120, (4, 10, 3)
    x, y = rng.normal(size=(n, 4)), rng.integers(0, 3, n)
    theta = 0.5 * rng.normal(size=(LANES, 4 * 10 + 10 + 10 * 3 + 3))
    pl, x_t = np.ascontiguousarray(theta.T), np.ascontiguousarray(x.T)
    gl, loss = np.empty_like(pl), np.empty(LANES)
    _repeat(pl, gl, x_t, y, 1.0 / n, loss, 1)
    ref_loss, _, _, ref_grad = small.small_mlp(theta, x, y, sizes, "tanh", 1.0 / n, small.GRADIENT)
    print(f"largest relative difference: loss {np.max(np.abs(loss / ref_loss - 1)):.1e}, "
          f"gradient {np.max(np.abs(gl.T - ref_grad)) / np.max(np.abs(ref_grad)):.1e}")
    repeats = 20_000
    start = time.perf_counter()
    _repeat(pl, gl, x_t, y, 1.0 / n, loss, repeats)
    lanes = (time.perf_counter() - start) / repeats / LANES
    many = np.repeat(theta, 1000 // LANES + 1, axis=0)
    small.small_mlp(many, x, y, sizes, "tanh", 1.0 / n, small.GRADIENT)
    start = time.perf_counter()
    for _ in range(5):
        small.small_mlp(many, x, y, sizes, "tanh", 1.0 / n, small.GRADIENT)
    shipped = (time.perf_counter() - start) / 5 / many.shape[0]
    print(f"us per network pass, one thread: networks on the lanes {lanes * 1e6:.2f}, "
          f"shipped (samples on the lanes) {shipped * 1e6:.2f}")


if __name__ == "__main__":
    main()
