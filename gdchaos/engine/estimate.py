"""Rough run-time estimates for a sweep on this machine (for `gdchaos presets` and the TUI)."""
from __future__ import annotations

import functools
import json
import time

import numpy as np

from gdchaos import data
from gdchaos.config import SweepConfig, from_dict
from gdchaos.engine.build import build_for_dataset
from gdchaos.engine.units import plan_units

CALIBRATION_SAMPLES = {"mlp": 8192, "cnn": 512}  # samples of the timed evaluations
CALIBRATION_SECONDS = 0.1  # time evaluations for at least this long (tiny ones: up to 50)
CALIBRATION_WORK = 2e9  # at most this many network-parameter-samples per timed evaluation
MAX_CALIBRATION_NETWORKS = 4800
TAU_FRACTION = 0.5  # assumed share of the tau budget the references still train past T
START_SECONDS = 1.5  # imports, loading Numba's cached kernels, creating the results file (docs/performance.md)
FIT_SECONDS = 0.3e-3  # analysis of one eps-ball, T = 201 (docs/performance.md)


def network_size(config: SweepConfig) -> int:
    """Number of trainable parameters P of the config's network."""
    return build_for_dataset(config).n_params


def estimate_seconds(config: SweepConfig) -> float:
    """Seconds for the whole sweep, from a timed evaluation of the config's network on this machine.

    c = seconds per network and training sample of one gradient evaluation, measured on synthetic
    data of the data set's shape and sparsity (see :func:`seconds_per_network_sample`); then
    t = c N (ball network-epochs + tau network-epochs) (1 + N_test / (3 N)), the last factor for the
    test accuracy (a forward pass, about a third of a gradient). The tau phase is assumed to train
    the references for ``TAU_FRACTION`` of the budget left after T. Plus :func:`overhead_seconds`.
    """
    spec = data.dataset_spec(config.dataset)
    n_samples, n_test = spec.train, spec.test
    n_eta, ball = len(config.etas), config.replicas + 1
    ball_epochs = n_eta * config.ics * ball * (config.epochs + 1)
    tau_epochs = n_eta * config.ics * (config.tau_epochs - config.epochs) * TAU_FRACTION
    per_sample = seconds_per_network_sample(config)
    compute = per_sample * n_samples * (ball_epochs + tau_epochs) * (1 + n_test / (3 * n_samples))
    return compute + overhead_seconds(config)


def overhead_seconds(config: SweepConfig) -> float:
    """Seconds outside training: start-up plus the analysis of every eps-ball (fixed figures)."""
    return START_SECONDS + FIT_SECONDS * len(config.etas) * config.ics


def seconds_per_network_sample(config: SweepConfig) -> float:
    """Measured seconds of one gradient evaluation per network and sample, for this config's network
    with as many networks as its first unit of work trains at once (cached per model and batch)."""
    model = build_for_dataset(config)
    unit = plan_units(config, model, data.dataset_spec(config.dataset).train)[0]
    networks = unit.size * (config.replicas + 1)
    return _timed_evaluation(config.dataset, json.dumps(config.to_dict()["model"], sort_keys=True),
                             min(networks, MAX_CALIBRATION_NETWORKS))


@functools.lru_cache(maxsize=32)
def _timed_evaluation(dataset: str, model_json: str, networks: int) -> float:
    """Median seconds per network-sample of gradient evaluations on synthetic data: at least 3
    and up to 50 of them, until ``CALIBRATION_SECONDS`` (the first call compiles, or loads, the
    kernels and is not counted)."""
    spec = data.dataset_spec(dataset)
    config = from_dict({"dataset": dataset, "model": json.loads(model_json)})
    model = build_for_dataset(config)
    n_samples, features, classes = spec.train, spec.features, spec.classes
    n = min(n_samples, CALIBRATION_SAMPLES[config.model.kind],
            max(256, int(CALIBRATION_WORK // (networks * model.n_params))))
    n -= n % 64 if n >= 64 else 0
    rng = np.random.default_rng(0)
    x = rng.random((n, features)) * (rng.random((n, features)) < spec.density)
    y = rng.integers(0, classes, n)
    theta = model.init(rng, networks)
    model.evaluate(theta, x, y)
    times: list[float] = []
    while len(times) < 3 or (sum(times) < CALIBRATION_SECONDS and len(times) < 50):
        start = time.perf_counter()
        model.evaluate(theta, x, y)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / (networks * n)
