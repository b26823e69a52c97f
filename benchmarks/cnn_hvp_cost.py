"""Cost of one exact Hessian-vector product of the paper's CNN, in gradient evaluations.

Times (medians of --repeats interleaved runs, wall clock and process CPU time) of: one full-batch
gradient (``model.evaluate``), building the HVP operator (theta-only arrays, kept), one product
with those arrays kept, and one product that recomputes them (memory budget just below their size,
same chunks). Data: the first --samples MNIST training images with --data-dir, else uniform noise
of the same shape. Run:  python benchmarks/cnn_hvp_cost.py [--samples 2000] [--nets 1] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from gdchaos import data
from gdchaos.nn.cnn import CACHE_BYTES, paper_cnn
from gdchaos.nn import CNNHessianOperator


def _timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--nets", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    model = paper_cnn()
    rng = np.random.default_rng(0)
    if args.data_dir:
        x, y, _, _ = data.load("mnist", args.data_dir)
        x, y = x[:args.samples], y[:args.samples]
    else:
        x, y = rng.random((args.samples, 784)), rng.integers(0, 10, args.samples)
    theta = model.init(rng, args.nets)
    theta[:, ~model.weight_mask()] = rng.normal(0, 0.01, (args.nets, (~model.weight_mask()).sum()))
    v = rng.normal(size=theta.shape)
    kept = CNNHessianOperator(model, theta, x, y)
    size = kept.kept_bytes(args.nets, x.shape[0])
    if kept._kept is None or size <= CACHE_BYTES:
        raise SystemExit(f"--samples: the kept arrays ({size} bytes) must lie in ({CACHE_BYTES}, 1 GiB]")
    recomputed = CNNHessianOperator(model, theta, x, y, memory_budget=size - 1)
    assert recomputed._kept is None and recomputed._step == kept._step
    times = {name: [] for name in ("gradient", "build", "product (kept)", "product (recomputed)")}
    for _ in range(args.repeats):
        times["gradient"].append(_timed(lambda: model.evaluate(theta, x, y))[0])
        times["build"].append(_timed(lambda: CNNHessianOperator(model, theta, x, y))[0])
        times["product (kept)"].append(_timed(lambda: kept(v))[0])
        times["product (recomputed)"].append(_timed(lambda: recomputed(v))[0])
    gradient = np.median(times["gradient"], axis=0)
    print(f"paper CNN, R={args.nets}, N={x.shape[0]}, chunk {kept._step} samples, "
          f"{args.repeats} repeats (medians)")
    print(f"{'':22s} {'wall s':>8s} {'cpu s':>8s} {'gradients (wall, cpu)':>22s}")
    for name, values in times.items():
        wall, cpu = np.median(values, axis=0)
        print(f"{name:22s} {wall:8.3f} {cpu:8.3f} {wall / gradient[0]:10.2f} {cpu / gradient[1]:10.2f}")


if __name__ == "__main__":
    main()
