"""Seconds per full-batch MNIST epoch for a ball of the paper's CNNs (reference + replicas), peak memory.

The paper's CNN (Appendix B, Fig. 12; 9,098 parameters), float64, weights N(0, 0.01^2), zero
biases, eps = 1e-8. One epoch = loss and gradient of all networks on the 60,000 training images,
the GD update and the L1 distance of every replica to the reference (a sweep's epoch, minus test
accuracy). Compare with benchmarks/cnn_torch.py (same network in PyTorch, one network at a time).
Run:  python benchmarks/cnn_ball.py [--replicas 5] [--epochs 6] [--memory-mb 1024] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from gdchaos import backend, data
from gdchaos.nn import paper_cnn
from gdchaos.engine.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--eta", type=float, default=0.1)
    parser.add_argument("--memory-mb", type=int, default=1024, help="memory budget of one evaluation")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    x, y, _, _ = data.load("mnist", args.data_dir)
    model = paper_cnn()
    rng = np.random.default_rng(0)
    reference = model.init(rng, 1)
    noise = rng.uniform(-1e-8, 1e-8, size=(args.replicas, model.n_params)) * model.weight_mask()
    theta = np.concatenate([reference, reference + noise])
    pairs = np.stack([np.zeros(args.replicas, int), np.arange(1, args.replicas + 1)], axis=1)
    budget = args.memory_mb * 2**20

    times = []
    start = time.perf_counter()
    for record in train(model, theta, args.eta, x, y, args.epochs, pairs=pairs, memory_budget=budget):
        now = time.perf_counter()
        # epoch 0 includes JIT compilation / cache loading; the last evaluation has no gradient
        if 0 < record.epoch < args.epochs:
            times.append(now - start)
        start = now
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"gdchaos nets={args.replicas + 1} threads={backend.num_threads()} "
          f"chunk={model.chunk_size(len(theta), budget)} epochs={len(times)} "
          f"median_sec_per_epoch={np.median(times):.3f} min={np.min(times):.3f} "
          f"peak_rss_gib={peak_gib:.2f} loss={np.round(record.loss, 5).tolist()} "
          f"final_d={record.distances}")


if __name__ == "__main__":
    main()
