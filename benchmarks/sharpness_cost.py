"""Cost of one sharpness evaluation (top Hessian eigenvalue) in gradient evaluations, MNIST.

The paper's network (784-64-10, tanh, float64) trained for --epochs at --eta, then: the median
time of a full-batch gradient evaluation, and of top_eigenvalue cold (random start) and
warm-started from the eigenvector of --gap epochs earlier (as a sweep with --sharpness-every does).
Run:  python benchmarks/sharpness_cost.py [--eta 7.5] [--epochs 30] [--gap 5] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from gdchaos import data
from gdchaos.nn import top_eigenvalue
from gdchaos.nn import MLP
from gdchaos.engine.train import gradient_step


def _timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eta", type=float, default=7.5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--gap", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    x, y, _, _ = data.load("mnist", args.data_dir)
    model = MLP((784, 64, 10), activation="tanh")
    theta = model.init(np.random.default_rng(0), 1)
    for _ in range(args.epochs - args.gap):
        gradient_step(model, theta, args.eta, x, y)
    _, earlier = _timed(lambda: top_eigenvalue(model, theta, x, y))
    for _ in range(args.gap):
        gradient_step(model, theta, args.eta, x, y)
    gradient = np.median([_timed(lambda: model.evaluate(theta, x, y))[0] for _ in range(5)])
    cold, result = _timed(lambda: top_eigenvalue(model, theta, x, y))
    warm, warm_result = _timed(lambda: top_eigenvalue(model, theta, x, y, v0=earlier.vector))
    print(f"eta={args.eta} epoch={args.epochs} gradient={gradient:.3f}s "
          f"cold={cold:.2f}s ({result.iterations[0]} products, {cold / gradient:.0f} gradients) "
          f"warm={warm:.2f}s ({warm_result.iterations[0]} products, {warm / gradient:.0f} gradients) "
          f"sharpness={warm_result.eigenvalue[0]:.4f} 2/eta={2 / args.eta:.4f}")


if __name__ == "__main__":
    main()
