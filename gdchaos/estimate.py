"""Rough run-time estimates for a sweep on this machine (for `gdchaos presets` and the TUI)."""
from __future__ import annotations

import functools
import time

import numpy as np

from gdchaos.config import SweepConfig

# training-set sizes and feature counts, so estimates need no data on disk
DATASET_SHAPES = {"iris": (120, 4, 3), "digits": (1437, 64, 10), "mnist": (60000, 784, 10),
                  "fashion-mnist": (60000, 784, 10), "cifar10": (50000, 3072, 10)}
EPOCH_OVERHEAD_SECONDS = 1.5e-3  # Python and kernel-launch cost of one batched epoch
TAU_FRACTION = 0.5  # assumed share of the tau budget the references still train past T


def _model(config: SweepConfig):
    from gdchaos.sweep import build_model

    _, features, classes = DATASET_SHAPES[config.dataset]
    return build_model(config, features, classes)


def network_size(config: SweepConfig) -> int:
    """Number of trainable parameters P of the config's network."""
    return _model(config).n_params


def flops_per_sample(config: SweepConfig) -> float:
    """Multiply-adds x 2 of one forward pass on one sample (convolutions reuse their weights)."""
    if config.model.kind != "cnn":
        return 2.0 * network_size(config)
    from gdchaos.sweep import IMAGE_SHAPES

    channels, height, width = IMAGE_SHAPES[config.dataset]
    flops = 0.0
    for layer in config.model.layers:
        if layer["type"] == "conv":
            size, pad = layer["kernel"], layer.get("padding", 0)
            height, width = height + 2 * pad - size + 1, width + 2 * pad - size + 1
            flops += 2.0 * height * width * size * size * channels * layer["channels"]
            channels = layer["channels"]
        elif layer["type"] == "maxpool":
            height, width = height // layer.get("size", 2), width // layer.get("size", 2)
    return flops + 2.0 * channels * height * width * DATASET_SHAPES[config.dataset][2]


@functools.lru_cache(maxsize=1)
def machine_flops() -> float:
    """Measured float64 matrix-product speed of this machine (FLOP/s), ~0.2 s to measure."""
    a = np.random.default_rng(0).random((2000, 784))
    b = np.random.default_rng(1).random((784, 256))
    a @ b
    start = time.perf_counter()
    repeats = 5
    for _ in range(repeats):
        a @ b
    return repeats * 2 * a.shape[0] * a.shape[1] * b.shape[1] / (time.perf_counter() - start)


def estimate_seconds(config: SweepConfig) -> float:
    """Seconds for the whole sweep: 3 forward passes' flops per sample and network-epoch, plus overhead.

    The tau phase is assumed to train the references for half of the remaining budget.
    """
    n_samples = DATASET_SHAPES[config.dataset][0]
    n_eta, ball = len(config.etas), config.replicas + 1
    ball_epochs = n_eta * config.ics * ball * (config.epochs + 1)
    tau_epochs = n_eta * config.ics * (config.tau_epochs - config.epochs) * TAU_FRACTION
    flops = 3.0 * flops_per_sample(config) * n_samples * (ball_epochs + tau_epochs)
    from gdchaos.sweep import plan_units

    units = len(plan_units(config, _model(config), n_samples))
    overhead = units * (config.epochs + 1 + (config.tau_epochs - config.epochs) * TAU_FRACTION) * EPOCH_OVERHEAD_SECONDS
    return flops / machine_flops() + overhead
