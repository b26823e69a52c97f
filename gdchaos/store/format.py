"""The layout of a results file (docs/results-format.md): every dataset, created at once and atomically.

:func:`datasets` declares every dataset a sweep fills (name, shape, dtype, chunks, fill value); the
writer creates them from it and readers check an untrusted file against it. A new file is built
aside under a temporary name, every array allocated on disk and filled with "not computed" values
(NaN, NOT_COMPUTED), and renamed into place only when complete: a file at the output path always
has its full layout and its full size, so a run that has started never needs more disk space. Every chunk carries a Fletcher-32 checksum, so flipped or missing bytes
are read as an error, never as numbers.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from gdchaos import __version__
from gdchaos.analysis.fields import (FIT_FIELDS, NOT_COMPUTED, SUMMARY_FIELDS, TANGENT_FIT_FIELDS,
                                    TANGENT_SUMMARY_FIELDS)
from gdchaos.config import SweepConfig
from gdchaos.engine.units import Unit

FORMAT = "gdchaos-sweep"
FORMAT_VERSION = 1
CREATING = ".creating"  # suffix of a file being built aside: ``.NAME.creating-PID``
OVERHEAD_BYTES = 1 << 20  # metadata, checksums and dimension scales, on top of the raw arrays
METADATA_BLOCK = 1 << 18  # metadata is gathered in blocks this large, ahead of the data it describes
UNIT_ORIGIN = {"unit_host": 64, "unit_cpu": 96}  # per-unit records of the machine: name -> bytes


@dataclass(frozen=True)
class Spec:
    """One dataset of a results file."""

    shape: tuple[int, ...]
    dtype: str | np.dtype
    chunks: tuple[int, ...]
    fill: float | int | bytes = 0
    eta_axis: bool = True  # axis 0 runs over the learning rates (dimension scale ``eta``)
    data: np.ndarray | None = None  # written once at creation

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def datasets(config: SweepConfig, units: list[Unit], n_params: int, n_tensors: int) -> dict[str, Spec]:
    """Every dataset of the results file of ``config``: name -> :class:`Spec`."""
    rows = np.array([[u.eta_start, u.eta_stop, u.ic_start, u.ic_stop] for u in units], dtype=np.int32)
    return shapes(config, len(units), n_params, n_tensors, rows)


def shapes(config: SweepConfig, n_units: int, n_params: int, n_tensors: int,
           rows: np.ndarray | None = None) -> dict[str, Spec]:
    """The datasets of a file of ``n_units`` units (without ``rows``, the unit table: for size estimates)."""
    n_eta, q, m, t1 = len(config.etas), config.ics, config.replicas, config.epochs + 1
    # the small tables first: they lie right after the metadata, where a truncation reaches them last
    specs = {
        "eta": Spec((n_eta,), "f8", (n_eta,), data=np.asarray(config.etas, dtype=np.float64)),
        "units": Spec((n_units, 4), "i4", (n_units, 4), eta_axis=False, data=rows),
        "unit_done": Spec((n_units,), "i1", (n_units,), 0, eta_axis=False),
        "unit_epochs": Spec((n_units,), "i4", (n_units,), 0, eta_axis=False),
        # where each unit was computed (docs/cluster.md): fixed-length UTF-8, writable in SWMR mode
        **{name: Spec((n_units,), h5py.string_dtype("utf-8", length), (n_units,), b"", eta_axis=False)
           for name, length in UNIT_ORIGIN.items()},
        "distances": Spec((n_eta, q, m, t1), "f8", (1, 1, m, t1), np.nan),
        "layer_distances": Spec((n_eta, q, m, n_tensors, t1), "f8", (1, 1, m, n_tensors, t1), np.nan),
        **{name: Spec((n_eta, q, t1), "f8", (1, 1, t1), np.nan)
           for name in ("loss", "train_accuracy", "test_accuracy")},
        "reached_epoch": Spec((n_eta, q), "i4", (n_eta, q), NOT_COMPUTED),
        "diverged_epoch": Spec((n_eta, q, m + 1), "i4", (n_eta, q, m + 1), NOT_COMPUTED),
        "initial_params": Spec((q, n_params), "f8", (1, n_params), np.nan, eta_axis=False),
    }
    if config.sharpness_every:
        epochs = np.asarray(config.sharpness_epochs(), dtype=np.int32)
        n_s = epochs.shape[0]
        specs["sharpness_epochs"] = Spec((n_s,), "i4", (n_s,), eta_axis=False, data=epochs)
        specs["sharpness"] = Spec((n_eta, q, n_s), "f8", (1, 1, n_s), np.nan)
        specs["sharpness_iterations"] = Spec((n_eta, q, n_s), "i4", (1, 1, n_s), 0)
    if config.save_trajectories:
        ics = np.asarray(config.trajectory_ic_list(), dtype=np.int32)
        epochs = np.asarray(config.trajectory_epochs(), dtype=np.int32)
        specs["trajectory_ics"] = Spec(ics.shape, "i4", ics.shape, eta_axis=False, data=ics)
        specs["trajectory_epochs"] = Spec(epochs.shape, "i4", epochs.shape, eta_axis=False, data=epochs)
        # one chunk = one ball at one epoch, written whole as training streams it
        specs["trajectories"] = Spec(
            (n_eta, len(ics), m + 1, len(epochs), n_params), np.dtype(config.trajectory_dtype).str[1:],
            (1, 1, m + 1, 1, n_params), np.nan)
    if config.tangent:
        specs["tangent_log_distance"] = Spec((n_eta, q, t1), "f8", (1, 1, t1), np.nan)
    if config.tangent_k:
        k = config.tangent_k
        specs["lyapunov_spectrum"] = Spec((n_eta, q, k), "f8", (1, 1, k), np.nan)
        specs["tangent_condition"] = Spec((n_eta, q), "f8", (n_eta, q), np.nan)
    for name in SUMMARY_FIELDS:
        specs[f"summary/{name}"] = Spec((n_eta,), "f8", (n_eta,), np.nan)
    for name in FIT_FIELDS:
        specs[f"fit/{name}"] = Spec((n_eta, q), "f8", (n_eta, q), np.nan)
    if config.tangent:
        for name in TANGENT_SUMMARY_FIELDS:
            specs[f"summary/{name}"] = Spec((n_eta,), "f8", (n_eta,), np.nan)
        for name in TANGENT_FIT_FIELDS:
            specs[f"fit/{name}"] = Spec((n_eta, q), "f8", (n_eta, q), np.nan)
    return specs


def planned_bytes(specs: dict[str, Spec]) -> int:
    """Disk space a new results file takes: every array is allocated at creation, plus metadata."""
    return OVERHEAD_BYTES + sum(spec.nbytes for spec in specs.values())


def attributes(config: SweepConfig, *, n_params: int, layout: list[dict], fingerprint: str) -> dict:
    """The root attributes of a new file."""
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "gdchaos_version": __version__,
        "config": config.to_json(), "identity": config.identity(), "seed": config.seed,
        "dataset": config.dataset, "dataset_fingerprint": fingerprint,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_params": n_params, "layout": json.dumps(layout),
    }


def aside(path: Path) -> Path:
    """The name a new ``path`` is built under before it is renamed into place."""
    return path.with_name(f".{path.name}{CREATING}-{os.getpid()}")


def build(path: Path, specs: dict[str, Spec], attrs: dict, layout: list[dict]) -> None:
    """Write a complete new results file at ``path`` (every dataset of ``specs``, the root ``attrs``)."""
    with h5py.File(path, "w", libver="latest", locking=False, meta_block_size=METADATA_BLOCK) as handle:
        handle.attrs.update(attrs)
        eta = None
        for name, spec in specs.items():
            dataset = _create(handle, name, spec)
            if name == "eta":
                dataset.make_scale("eta")
                eta = dataset
            elif spec.eta_axis:
                dataset.dims[0].attach_scale(eta)
        handle["layer_distances"].attrs["tensors"] = json.dumps([tensor["name"] for tensor in layout])
        handle["initial_params"].attrs["layout"] = json.dumps(layout)
        if "trajectories" in handle:
            handle["trajectories"].attrs["layout"] = json.dumps(layout)
        handle.flush()
        os.fsync(handle.id.get_vfd_handle())


def _create(handle: h5py.File, name: str, spec: Spec) -> h5py.Dataset:
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)  # every chunk written now: the file never grows
    if spec.data is not None:
        return handle.create_dataset(name, data=spec.data, chunks=spec.chunks, fletcher32=True, dcpl=dcpl)
    return handle.create_dataset(name, shape=spec.shape, dtype=spec.dtype, chunks=spec.chunks,
                                 fillvalue=spec.fill, fletcher32=True, dcpl=dcpl)
