"""One unit computed in one call, in any process: what a Dask worker runs (docs/cluster.md).

:func:`compute_unit` takes what can travel cheaply (the config as JSON, the unit, the results file's
dataset fingerprint), loads the dataset and builds the model itself, trains the unit to the end with
:func:`gdchaos.engine.sweep.run_unit` and returns its final arrays (:class:`UnitResult`). The writer
stores them with the same calls as a serial run, so the file holds the same bits.
"""
from __future__ import annotations

import json
import platform
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from gdchaos import data as datasets
from gdchaos.config import SweepConfig, from_dict
from gdchaos.engine.build import build_model
from gdchaos.engine.sweep import UnitProgress, run_unit
from gdchaos.engine.units import Unit, initial_conditions
from gdchaos.errors import GdchaosError


@dataclass
class UnitResult:
    """A finished unit: its arrays (as :func:`run_unit` fills them) and where it was computed."""

    arrays: dict[str, np.ndarray]
    epochs_done: int  # ``unit_epochs`` of the finished unit
    initial_params: np.ndarray  # theta(0) of the unit's references (n_ic_unit, P)
    trajectory: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (column, (ne, ni, M+1, P))
    host: str = ""
    cpu: str = ""


@lru_cache
def machine() -> tuple[str, str]:
    """(host name, CPU model) of this process's machine, as recorded per unit in the results file."""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass
    return socket.gethostname(), cpu or platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def _prepared(config_json: str, fingerprint: str):
    """The config, model and data of a sweep, loaded once per process and checked against the file."""
    config = from_dict(json.loads(config_json)).validate()
    data = datasets.load(config.dataset, config.data_dir)
    found = datasets.fingerprint(*data)
    if found != fingerprint:
        raise GdchaosError(
            f"dataset: {config.dataset} on worker {machine()[0]} has fingerprint {found}, the results file "
            f"{fingerprint}; give that worker the same data (GDCHAOS_DATA or --data-dir)")
    x, y, _, y_test = data
    model = build_model(config, x.shape[1], int(max(y.max(), y_test.max())) + 1)
    return config, model, data


def compute_unit(config_json: str, unit: Unit, fingerprint: str,
                 progress: Callable[[UnitProgress], None] | None = None) -> UnitResult:
    """Train ``unit`` of the sweep ``config_json`` (:meth:`SweepConfig.to_json`) to the end.

    The dataset is loaded here (``data_dir`` of the config, else ``$GDCHAOS_DATA``) and must have the
    results file's ``fingerprint``. ``progress`` sees every event of :func:`run_unit`.
    """
    config, model, data = _prepared(config_json, fingerprint)
    balls = initial_conditions(model, config, unit.ic_start, unit.ic_stop)
    keep = _keeps_trajectories(config, unit)
    trajectory = []
    event = None
    for event in run_unit(model, config, unit, data, balls):
        if keep and event.trajectory is not None:
            column, theta = event.trajectory
            trajectory.append((column, theta.copy()))  # training goes on in place
        if progress is not None:
            progress(event)
    host, cpu = machine()
    return UnitResult(arrays=event.arrays, epochs_done=event.epoch + 1, initial_params=balls[:, 0].copy(),
                      trajectory=trajectory, host=host, cpu=cpu)


def _keeps_trajectories(config: SweepConfig, unit: Unit) -> bool:
    """Whether any of the unit's initial conditions has its trajectory stored."""
    return any(unit.ic_start <= ic < unit.ic_stop for ic in config.trajectory_ic_list())
