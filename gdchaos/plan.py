"""What a sweep will take before anything is allocated: units, networks, peak memory, file size.

:func:`plan` works from the config and the network's shapes alone (no data, no arrays), so a run
that cannot fit is refused in one line by :func:`check_affordable` before any file or array exists,
and ``gdchaos run --dry-run`` prints the same figures. The memory model and its measured accuracy
are in docs/reliability.md.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gdchaos import data
from gdchaos.analysis.params import BOOTSTRAP_BYTES
from gdchaos.config import SweepConfig
from gdchaos.engine.build import build_for_dataset
from gdchaos.engine.units import unit_shape
from gdchaos.errors import GdchaosError
from gdchaos.store.format import Spec, planned_bytes, shapes
from gdchaos.store.writer import check_space

BASE_BYTES = 256 << 20  # the interpreter, NumPy, Numba and h5py once imported
PARAM_COPIES = 4  # the ball, the parameters, their gradient and the update of every network of a unit
TANGENT_COPIES = 3  # the tangent vectors, their images under J_t and the QR's work
MAX_CHUNK_BYTES = 2**32 - 1  # HDF5's limit on one chunk
# what to lower when a figure is too large: the flags (or config keys) that set it
LOWER = {
    "parameters": "--replicas, --hidden, or ics_per_unit / etas_per_unit in a config file",
    "activations": "--memory-budget-mb",
    "curves": "--epochs or --replicas",
    "tangents": "--tangent-k",
    "analysis": "--ics, --replicas or --epochs",
    "bootstrap": "[analysis] n_boot or --ics",
    "chunk": "--replicas, --epochs or --hidden",
}


@dataclass(frozen=True)
class Plan:
    """The size of a sweep: ``networks`` trained in all, at most ``unit_networks`` at once."""

    units: int
    networks: int
    unit_networks: int
    n_params: int
    memory: dict[str, int]  # bytes of each part of the peak (``LOWER`` says what sets each)
    file_bytes: int
    specs: dict[str, Spec] = field(repr=False)  # the results file's datasets

    @property
    def peak_memory_bytes(self) -> int:
        """The largest resident size of the run: the base, the data, then training or analysis."""
        training = sum(self.memory[part] for part in ("parameters", "activations", "curves", "tangents"))
        analysis = self.memory["analysis"] + self.memory["bootstrap"]
        return self.memory["base"] + self.memory["data"] + max(training, analysis)

    def to_dict(self) -> dict[str, float | int]:
        """The plan as ``gdchaos run --dry-run --json`` prints it (MB = 10^6 bytes)."""
        return {"units": self.units, "networks": self.networks, "unit_networks": self.unit_networks,
                "n_params": self.n_params, "peak_memory_mb": round(self.peak_memory_bytes / 1e6, 1),
                "file_mb": round(self.file_bytes / 1e6, 1)}


def plan(config: SweepConfig) -> Plan:
    """The plan of a validated ``config``, from shapes alone.

    Peak memory (:attr:`Plan.peak_memory_bytes`) = base + data + max(training, analysis), where
    training holds ``PARAM_COPIES`` parameter vectors of each of the N networks of the largest unit,
    their activations (``work_bytes``), the unit's recorded curves and its references' tangent
    vectors (``tangent_k`` + ``tangent``, each of P); the analysis holds one
    learning rate's distances and the bootstrap's n_boot x q draws.
    """
    model = build_for_dataset(config)
    spec = data.dataset_spec(config.dataset)
    n_eta, q, m, t1 = len(config.etas), config.ics, config.replicas, config.epochs + 1
    ball = m + 1
    etas_per_unit, ics_per_unit = unit_shape(config, model, spec.train)
    units = math.ceil(n_eta / etas_per_unit) * math.ceil(q / ics_per_unit)
    unit_networks = etas_per_unit * ics_per_unit * ball
    n_params, n_tensors = model.n_params, len(model.layout())
    _check_chunks(config, n_params, n_tensors)
    specs = shapes(config, units, n_params, n_tensors)
    itemsize = np.dtype(config.dtype).itemsize
    memory = {
        "base": BASE_BYTES, "data": (spec.train + spec.test) * spec.features * 8,
        "parameters": PARAM_COPIES * unit_networks * n_params * itemsize,
        "activations": model.work_bytes(unit_networks, spec.train, config.memory_budget_bytes),
        "curves": etas_per_unit * ics_per_unit * m * (n_tensors + 1) * t1 * 8,
        "tangents": TANGENT_COPIES * etas_per_unit * ics_per_unit * (config.tangent_k + config.tangent) * n_params * 8,
        "analysis": q * m * t1 * 8, "bootstrap": config.fit_params().n_boot * q * BOOTSTRAP_BYTES,
    }
    return Plan(units=units, networks=n_eta * q * ball, unit_networks=unit_networks, n_params=n_params,
                memory=memory, file_bytes=planned_bytes(specs), specs=specs)


def _check_chunks(config: SweepConfig, n_params: int, n_tensors: int) -> None:
    """Refuse, before the shapes are listed, chunks HDF5 cannot store (one ball's curves, one network)."""
    ball_curves = config.replicas * (n_tensors + 1) * (config.epochs + 1) * 8
    network = n_params * 8 * (config.replicas + 1 if config.save_trajectories else 1)
    largest = max(ball_curves, network)
    if largest > MAX_CHUNK_BYTES:
        what = ("one ball's distance curves" if largest == ball_curves
                else "one ball's parameters" if config.save_trajectories else "one network's parameters")
        raise GdchaosError(f"{what} would take {largest / 1e9:,.1f} GB, more than HDF5 stores in one chunk "
                           f"({MAX_CHUNK_BYTES / 1e9:.1f} GB); lower {LOWER['chunk']}")


def check_affordable(plan: Plan, output: str | Path) -> None:
    """Refuse, in one line naming what to lower, a plan larger than this machine's memory or (for a
    new file) the free space where ``output`` goes."""
    total = physical_memory()
    if plan.peak_memory_bytes > total:
        part = max((part for part in LOWER if part in plan.memory), key=plan.memory.__getitem__)
        raise GdchaosError(f"the run needs about {plan.peak_memory_bytes / 1e9:,.1f} GB of memory, "
                           f"{plan.memory[part] / 1e9:,.1f} GB of it for the {part}; this machine has "
                           f"{total / 1e9:,.1f} GB; lower {LOWER[part]}")
    path = Path(output)
    if path.parent.is_dir() and not path.exists():  # otherwise the writer checks when it creates the file
        check_space(path, plan.specs)


def physical_memory() -> int:
    """Bytes of RAM this machine has (the limit a run's peak is checked against)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
