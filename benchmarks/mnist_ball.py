"""Seconds per full-batch MNIST epoch for a ball of networks (reference + replicas), peak memory.

The paper's network: 784-64-10, tanh, float64, N(0, 1) weights, zero biases, eta = 10, eps = 1e-8.
One epoch = loss and gradient of all networks on the 60,000 training images, the GD update and
the L1 distance of every replica to the reference (what a sweep does each epoch, minus test
accuracy). Run:  python benchmarks/mnist_ball.py [--replicas 5] [--epochs 7] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import resource
import time

import gdchaos  # noqa: F401  (before NumPy: its OpenBLAS setting, as in the gdchaos command)
import numpy as np

from gdchaos import data
from gdchaos.nn import MLP
from gdchaos.engine.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=7)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    x, y, _, _ = data.load("mnist", args.data_dir)
    model = MLP((784, args.hidden, 10), activation="tanh")
    rng = np.random.default_rng(0)
    reference = model.init(rng, 1)
    noise = rng.uniform(-1e-8, 1e-8, size=(args.replicas, model.n_params)) * model.weight_mask()
    theta = np.concatenate([reference, reference + noise])
    pairs = np.stack([np.zeros(args.replicas, int), np.arange(1, args.replicas + 1)], axis=1)

    times = []
    start = time.perf_counter()
    for record in train(model, theta, 10.0, x, y, args.epochs, pairs=pairs):
        now = time.perf_counter()
        if record.epoch > 0:  # epoch 0 includes JIT compilation / cache loading
            times.append(now - start)
        start = now
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"gdchaos nets={args.replicas + 1} epochs={len(times)} "
          f"median_sec_per_epoch={np.median(times):.4f} min={np.min(times):.4f} "
          f"peak_rss_gib={peak_gib:.2f} final_d={record.distances}")


if __name__ == "__main__":
    main()
