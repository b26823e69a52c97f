"""Rough run-time estimates for a sweep on this machine (for `gdchaos presets` and the TUI).

A calibration (seconds per network and sample of one gradient evaluation) is measured once per
network, batch and machine and kept in ``calibration.json`` under the gdchaos cache folder, so later
answers take no measurement; an entry older than ``CALIBRATION_MAX_AGE`` is still used and measured
again in the background (``python -m gdchaos.engine.estimate``, see :func:`refresh_in_background`).
"""
from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from gdchaos import data
from gdchaos.config import SweepConfig, from_dict
from gdchaos.engine.build import build_for_dataset
from gdchaos.engine.units import unit_shape

CALIBRATION_SAMPLES = {"mlp": 8192, "cnn": 512}  # samples of the timed evaluations
CALIBRATION_SECONDS = 0.1  # time evaluations for at least this long (tiny ones: up to 50)
CALIBRATION_WORK = 2e9  # at most this many network-parameter-samples per timed evaluation
MAX_CALIBRATION_NETWORKS = 4800
TAU_FRACTION = 0.5  # assumed share of the tau budget the references still train past T
START_SECONDS = 1.5  # imports, loading Numba's cached kernels, creating the results file (docs/performance.md)
FIT_SECONDS = 0.3e-3  # analysis of one eps-ball, T = 201 (docs/performance.md)
CALIBRATION_FILE = "calibration.json"
CALIBRATION_MAX_AGE = 30 * 86400.0  # seconds before a stored calibration is measured again
BACKGROUND_ENV = "GDCHAOS_BACKGROUND_TIMING"  # "0": never time networks in the background (CI, batch jobs)


def network_size(config: SweepConfig) -> int:
    """Number of trainable parameters P of the config's network."""
    return build_for_dataset(config).n_params


def estimate_seconds(config: SweepConfig, *, measure: bool = True) -> float | None:
    """Seconds for the whole sweep, from a timed evaluation of the config's network on this machine.

    c = seconds per network and training sample of one gradient evaluation, measured on synthetic
    data of the data set's shape and sparsity (see :func:`seconds_per_network_sample`); then
    t = c N (ball network-epochs + tau network-epochs) (1 + N_test / (3 N)), the last factor for the
    test accuracy (a forward pass, about a third of a gradient). The tau phase is assumed to train
    the references for ``TAU_FRACTION`` of the budget left after T. Plus :func:`overhead_seconds`.
    c comes from the stored calibration; without one it is measured (and stored), or, with
    ``measure=False``, the answer is None.
    """
    spec = data.dataset_spec(config.dataset)
    n_samples, n_test = spec.train, spec.test
    n_eta, ball = len(config.etas), config.replicas + 1
    ball_epochs = n_eta * config.ics * ball * (config.epochs + 1)
    tau_epochs = n_eta * config.ics * (config.tau_epochs - config.epochs) * TAU_FRACTION
    per_sample = seconds_per_network_sample(config, measure=measure)
    if per_sample is None:
        return None
    compute = per_sample * n_samples * (ball_epochs + tau_epochs) * (1 + n_test / (3 * n_samples))
    return compute + overhead_seconds(config)


def overhead_seconds(config: SweepConfig) -> float:
    """Seconds outside training: start-up plus the analysis of every eps-ball (fixed figures)."""
    return START_SECONDS + FIT_SECONDS * len(config.etas) * config.ics


def seconds_per_network_sample(config: SweepConfig, *, measure: bool = True) -> float | None:
    """Seconds of one gradient evaluation per network and sample, for this config's network with as
    many networks as its first unit of work trains at once: stored for this machine, else measured
    and stored (None when not stored and ``measure`` is False)."""
    key = calibration_key(config)
    stored = read_calibration().get(key)
    if stored is not None:
        return float(stored["seconds"])
    if not measure:
        return None
    dataset, model_json, networks = json.loads(key)[1:]
    seconds = _timed_evaluation(dataset, model_json, networks)
    store_calibration(key, seconds)
    return seconds


def calibration_key(config: SweepConfig) -> str:
    """What a calibration depends on: this machine, the data set's shape, the network and the batch."""
    model = build_for_dataset(config)
    etas_per_unit, ics_per_unit = unit_shape(config, model, data.dataset_spec(config.dataset).train)
    networks = min(etas_per_unit * ics_per_unit * (config.replicas + 1), MAX_CALIBRATION_NETWORKS)
    machine = f"{platform.node()}/{platform.machine()}/{os.cpu_count()}/{os.environ.get('NUMBA_NUM_THREADS', '')}"
    return json.dumps([machine, config.dataset, json.dumps(config.to_dict()["model"], sort_keys=True), networks])


def calibration_path() -> Path:
    """The calibrations of this machine: ``calibration.json`` in the gdchaos cache folder."""
    return data.cache_root() / CALIBRATION_FILE


def read_calibration() -> dict[str, dict]:
    """Stored calibrations by key (empty when none or unreadable: they are only hints)."""
    try:
        stored = json.loads(calibration_path().read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def store_calibration(key: str, seconds: float) -> None:
    """Add one calibration (written aside and renamed: readers never see half a file)."""
    stored = read_calibration()
    stored[key] = {"seconds": seconds, "measured": time.time()}
    path = calibration_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f"{path.name}.{os.getpid()}.part")
        part.write_text(json.dumps(stored, indent=0, sort_keys=True))
        os.replace(part, path)
    except OSError:  # a read-only cache: estimates are measured again next time
        pass


def stale(config: SweepConfig) -> bool:
    """No calibration for this config's network on this machine, or an old one."""
    stored = read_calibration().get(calibration_key(config))
    return stored is None or time.time() - float(stored.get("measured", 0)) > CALIBRATION_MAX_AGE


def refresh_in_background(presets: list[str]) -> bool:
    """Measure the calibrations of these presets in a separate low-priority process (it outlives the
    caller); False when ``$GDCHAOS_BACKGROUND_TIMING`` is 0 (nothing started)."""
    if os.environ.get(BACKGROUND_ENV, "1") == "0":
        return False
    subprocess.Popen([sys.executable, "-m", "gdchaos.engine.estimate", *presets], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return True


def main(argv: list[str]) -> int:
    """``python -m gdchaos.engine.estimate PRESET...``: measure and store their calibrations."""
    from gdchaos import presets

    if hasattr(os, "nice"):
        os.nice(10)
    for name in argv:
        config = presets.get(name)
        key = calibration_key(config)
        dataset, model_json, networks = json.loads(key)[1:]
        store_calibration(key, _timed_evaluation(dataset, model_json, networks))
    return 0


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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
