"""PyTorch baseline for benchmarks/cnn_ball.py: the paper's CNN, float64 CPU, networks one by one.

The paper's network (Appendix B, Fig. 12): conv 1->8 (3x3, pad 1) + ReLU + maxpool 2, conv 8->16
(3x3, pad 1) + ReLU + maxpool 2, linear 784->10; weights N(0, 0.01^2), biases 0. One epoch = for
each of the ``--nets`` networks in turn: forward on all 60,000 MNIST images, autograd backward and
the GD update (Eq. 1). ``--chunk`` accumulates the full-batch gradient over chunks of samples
(same gradient, less memory); the default 0 is one forward of the whole batch.
Run with a PyTorch environment from the repository root:
    python benchmarks/cnn_torch.py [--nets 6] [--epochs 5] [--threads 2] [--chunk 0] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # gdchaos.data needs only NumPy
from gdchaos import data  # noqa: E402


def paper_cnn() -> nn.Sequential:
    """The Fig. 12 network in float64 with weights ~ N(0, 0.01^2) and zero biases."""
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(784, 10),
    ).double()
    with torch.no_grad():
        for name, param in net.named_parameters():
            param.normal_(0.0, 0.01) if name.endswith("weight") else param.zero_()
    return net


def epoch(net: nn.Sequential, x: torch.Tensor, y: torch.Tensor, eta: float, chunk: int) -> float:
    """One full-batch GD step; returns the loss before the step."""
    net.zero_grad(set_to_none=True)
    step = chunk or x.shape[0]
    total = 0.0
    for start in range(0, x.shape[0], step):
        loss = nn.functional.cross_entropy(net(x[start:start + step]), y[start:start + step],
                                           reduction="sum") / x.shape[0]
        loss.backward()
        total += loss.item()
    with torch.no_grad():
        for param in net.parameters():
            param -= eta * param.grad
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=0)
    parser.add_argument("--eta", type=float, default=0.1)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    x_np, y_np, _, _ = data.load("mnist", args.data_dir)
    x = torch.from_numpy(x_np).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(y_np)
    torch.manual_seed(0)
    nets = [paper_cnn() for _ in range(args.nets)]

    times, losses = [], []
    for t in range(args.epochs + 1):
        start = time.perf_counter()
        losses = [epoch(net, x, y, args.eta, args.chunk) for net in nets]
        if t > 0:  # epoch 0 warms up allocators and thread pools
            times.append(time.perf_counter() - start)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"torch {torch.__version__} nets={args.nets} threads={torch.get_num_threads()} "
          f"chunk={args.chunk or x.shape[0]} epochs={len(times)} "
          f"median_sec_per_epoch={np.median(times):.3f} min={np.min(times):.3f} "
          f"peak_rss_gib={peak_gib:.2f} loss={np.round(losses, 5).tolist()}")


if __name__ == "__main__":
    main()
