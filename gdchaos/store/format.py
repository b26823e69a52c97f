"""The layout of a results file (docs/results-format.md): every dataset, created at once and atomically.

:func:`datasets` declares every dataset a sweep fills (name, shape, dtype, chunks, fill value, the
name of each axis); the writer creates them from it and readers check an untrusted file against it.
A new dataset names its axes (``dims``); a new axis also gets its coordinate (:func:`coordinate`),
so that netCDF tools (h5netcdf, xarray) read every axis as named and labelled. A new file is built
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
from gdchaos.analysis.fields import (FIT_DESCRIPTIONS, FIT_FIELDS, NEVER, NOT_COMPUTED, SUMMARY_DESCRIPTIONS,
                                     SUMMARY_FIELDS, TANGENT_DESCRIPTIONS, TANGENT_FIT_FIELDS, TANGENT_SUMMARY_FIELDS)
from gdchaos.config import SweepConfig
from gdchaos.engine.units import Unit

FORMAT = "gdchaos-sweep"
FORMAT_VERSION = 2  # 2: every axis named (dimension scales), long_name and units
CREATING = ".creating"  # suffix of a file being built aside: ``.NAME.creating-PID``
OVERHEAD_BYTES = 1 << 20  # metadata, checksums and dimension scales, on top of the raw arrays
METADATA_BLOCK = 1 << 18  # metadata is gathered in blocks this large, ahead of the data it describes
UNIT_ORIGIN = {"unit_host": 64, "unit_cpu": 96}  # per-unit records of the machine: name -> bytes


@dataclass(frozen=True)
class Spec:
    """One dataset of a results file.

    ``dims`` names each axis (netCDF dimensions, stored as HDF5 dimension scales). A dataset whose
    name (its last path part) is its only dimension is that dimension's coordinate: its values label
    the axis, and every other dataset naming the dimension is attached to it, in its own group if the
    group has one, else at the root. ``since``: the format version that added the dataset (files of
    older versions lack it).
    """

    shape: tuple[int, ...]
    dtype: str | np.dtype
    chunks: tuple[int, ...]
    fill: float | int | bytes = 0
    dims: tuple[str, ...] = ()
    long_name: str = ""
    units: str = "1"  # "" for text
    data: np.ndarray | None = None  # written once at creation
    since: int = 1

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def is_coordinate(self, name: str) -> bool:
        """Whether the dataset ``name`` is the coordinate of its one dimension."""
        return self.dims == (name.rpartition("/")[2],)


def coordinate(name: str, values, long_name: str, units: str = "1", *, since: int = 2) -> Spec:
    """The coordinate (dimension scale) ``name``: one axis, labelled by ``values`` (a ``range``: int32
    indices, made an array only when the file is built)."""
    if isinstance(values, range):
        return Spec((len(values),), "i4", (max(1, len(values)),), dims=(name,), long_name=long_name, units=units,
                    data=values, since=since)
    values = np.asarray(values)
    return Spec(values.shape, values.dtype.str[1:], values.shape, dims=(name,), long_name=long_name, units=units,
                data=values, since=since)


def datasets(config: SweepConfig, units: list[Unit], n_params: int, n_tensors: int) -> dict[str, Spec]:
    """Every dataset of the results file of ``config``: name -> :class:`Spec`."""
    rows = np.array([[u.eta_start, u.eta_stop, u.ic_start, u.ic_stop] for u in units], dtype=np.int32)
    return shapes(config, len(units), n_params, n_tensors, rows)


def shapes(config: SweepConfig, n_units: int, n_params: int, n_tensors: int,
           rows: np.ndarray | None = None) -> dict[str, Spec]:
    """The datasets of a file of ``n_units`` units (without ``rows``, the unit table: for size estimates).

    Index coordinates stay ``range`` objects until the file is built, so a plan costs no memory.
    """
    n_eta, q, m, t1 = len(config.etas), config.ics, config.replicas, config.epochs + 1
    eta = np.asarray(config.etas, dtype=np.float64)
    ball = ("eta", "ic")
    # the small tables first: they lie right after the metadata, where a truncation reaches them last
    specs = {
        "eta": coordinate("eta", eta, "learning rate", since=1),
        "units": Spec((n_units, 4), "i4", (n_units, 4), dims=("unit", "unit_bound"), data=rows,
                      long_name="unit k covers etas [eta_start, eta_stop) x ICs [ic_start, ic_stop)"),
        "unit_done": Spec((n_units,), "i1", (n_units,), 0, ("unit",), "1 once the unit's arrays are stored"),
        "unit_epochs": Spec((n_units,), "i4", (n_units,), 0, ("unit",), "epochs the unit has trained", "epochs"),
        # where each unit was computed (docs/cluster.md): fixed-length UTF-8, writable in SWMR mode
        **{name: Spec((n_units,), h5py.string_dtype("utf-8", length), (n_units,), b"", ("unit",), long_name, "")
           for (name, length), long_name in zip(UNIT_ORIGIN.items(), ("host that computed the unit",
                                                                    "CPU model that computed the unit"))},
        "ic": coordinate("ic", range(q), "initial condition"),
        "replica": coordinate("replica", range(1, m + 1), "replica (network j of the ball)"),
        "network": coordinate("network", range(m + 1), "network of the ball (0: the reference, j: replica j)"),
        "epoch": coordinate("epoch", range(t1), "epoch", "epochs"),
        "tensor": coordinate("tensor", range(n_tensors), "parameter tensor (names: layer_distances.tensors)"),
        "param": coordinate("param", range(n_params), "parameter (flat index into theta)"),
        "unit": coordinate("unit", range(n_units), "unit of work"),
        "unit_bound": coordinate("unit_bound", range(4), "eta_start, eta_stop, ic_start, ic_stop"),
        "distances": Spec((n_eta, q, m, t1), "f8", (1, 1, m, t1), np.nan, (*ball, "replica", "epoch"),
                          "L1 distance d_j(t) of replica j to its reference"),
        "layer_distances": Spec((n_eta, q, m, n_tensors, t1), "f8", (1, 1, m, n_tensors, t1), np.nan,
                                (*ball, "replica", "tensor", "epoch"), "L1 distance per parameter tensor"),
        **{name: Spec((n_eta, q, t1), "f8", (1, 1, t1), np.nan, (*ball, "epoch"), f"{name.replace('_', ' ')} of "
                      "the reference") for name in ("loss", "train_accuracy", "test_accuracy")},
        "reached_epoch": Spec((n_eta, q), "i4", (n_eta, q), NOT_COMPUTED, ball, "first epoch with test accuracy "
                              f">= target ({NEVER}: never within tau_epochs, {NOT_COMPUTED}: not computed)", "epochs"),
        "diverged_epoch": Spec((n_eta, q, m + 1), "i4", (n_eta, q, m + 1), NOT_COMPUTED, (*ball, "network"),
                               f"first epoch with a non-finite loss ({NEVER}: never, {NOT_COMPUTED}: not computed)",
                               "epochs"),
        "initial_params": Spec((q, n_params), "f8", (1, n_params), np.nan, ("ic", "param"),
                               "theta(0) of the reference"),
    }
    if config.sharpness_every:
        epochs = np.asarray(config.sharpness_epochs(), dtype=np.int32)
        n_s = epochs.shape[0]
        specs["sharpness_epoch"] = coordinate("sharpness_epoch", epochs, "epoch of a sharpness record", "epochs")
        specs["sharpness_epochs"] = Spec((n_s,), "i4", (n_s,), dims=("sharpness_epoch",), data=epochs,
                                         long_name="epoch of a sharpness record", units="epochs")
        specs["sharpness"] = Spec((n_eta, q, n_s), "f8", (1, 1, n_s), np.nan, (*ball, "sharpness_epoch"),
                                  "top Hessian eigenvalue of the reference")
        specs["sharpness_iterations"] = Spec((n_eta, q, n_s), "i4", (1, 1, n_s), 0, (*ball, "sharpness_epoch"),
                                             "Hessian-vector products of the evaluation")
    if config.save_trajectories:
        ics = np.asarray(config.trajectory_ic_list(), dtype=np.int32)
        epochs = np.asarray(config.trajectory_epochs(), dtype=np.int32)
        specs["trajectory_ic"] = coordinate("trajectory_ic", ics, "initial condition with stored parameters")
        specs["trajectory_epoch"] = coordinate("trajectory_epoch", epochs, "epoch with stored parameters", "epochs")
        specs["trajectory_ics"] = Spec(ics.shape, "i4", ics.shape, dims=("trajectory_ic",), data=ics,
                                       long_name="initial condition with stored parameters")
        specs["trajectory_epochs"] = Spec(epochs.shape, "i4", epochs.shape, dims=("trajectory_epoch",), data=epochs,
                                          long_name="epoch with stored parameters", units="epochs")
        # one chunk = one ball at one epoch, written whole as training streams it
        specs["trajectories"] = Spec(
            (n_eta, len(ics), m + 1, len(epochs), n_params), np.dtype(config.trajectory_dtype).str[1:],
            (1, 1, m + 1, 1, n_params), np.nan, ("eta", "trajectory_ic", "network", "trajectory_epoch", "param"),
            "parameters of the ball's networks")
    if config.tangent:
        specs["tangent_log_distance"] = Spec((n_eta, q, t1), "f8", (1, 1, t1), np.nan, (*ball, "epoch"),
                                             "ln ||Phi_t xi_1||_1: the linearised perturbation of replica 1")
    if config.tangent_k:
        k = config.tangent_k
        specs["exponent"] = coordinate("exponent", range(k), "index of the tangent exponent (0: the largest)")
        specs["lyapunov_spectrum"] = Spec((n_eta, q, k), "f8", (1, 1, k), np.nan, (*ball, "exponent"),
                                          "finite-time Lyapunov exponents over [0, T] (L2 norm)", "1/epoch")
        specs["tangent_condition"] = Spec((n_eta, q), "f8", (n_eta, q), np.nan, ball,
                                          "largest condition number of the QR factors seen")
    # each group carries its own coordinates, so that it opens as a dataset of its own
    specs["summary/eta"] = coordinate("eta", eta, "learning rate")
    for name in SUMMARY_FIELDS:
        long_name, unit = SUMMARY_DESCRIPTIONS[name]
        specs[f"summary/{name}"] = Spec((n_eta,), "f8", (n_eta,), np.nan, ("eta",), long_name, unit)
    specs["fit/eta"] = coordinate("eta", eta, "learning rate")
    specs["fit/ic"] = coordinate("ic", range(q), "initial condition")
    for name in FIT_FIELDS:
        long_name, unit = FIT_DESCRIPTIONS[name]
        specs[f"fit/{name}"] = Spec((n_eta, q), "f8", (n_eta, q), np.nan, ball, long_name, unit)
    if config.tangent:
        for name in TANGENT_SUMMARY_FIELDS:
            long_name, unit = TANGENT_DESCRIPTIONS[name]
            specs[f"summary/{name}"] = Spec((n_eta,), "f8", (n_eta,), np.nan, ("eta",), long_name, unit)
        for name in TANGENT_FIT_FIELDS:
            long_name, unit = TANGENT_DESCRIPTIONS[name]
            specs[f"fit/{name}"] = Spec((n_eta, q), "f8", (n_eta, q), np.nan, ball, long_name, unit)
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
    """Write a complete new results file at ``path`` (every dataset of ``specs``, the root ``attrs``).

    Every axis is labelled here, before any writer switches the file to SWMR mode (which forbids new
    attributes): the dimension scales and each dataset's ``long_name`` and ``units``.
    """
    with h5py.File(path, "w", libver="latest", locking=False, meta_block_size=METADATA_BLOCK) as handle:
        handle.attrs.update(attrs)
        for name, spec in specs.items():
            _create(handle, name, spec).attrs.update(labels(spec))
        label_axes(handle, specs)
        handle["layer_distances"].attrs["tensors"] = json.dumps([tensor["name"] for tensor in layout])
        handle["initial_params"].attrs["layout"] = json.dumps(layout)
        if "trajectories" in handle:
            handle["trajectories"].attrs["layout"] = json.dumps(layout)
        handle.flush()
        os.fsync(handle.id.get_vfd_handle())


def labels(spec: Spec) -> dict[str, str]:
    """The attributes that describe a dataset: ``long_name``, ``units``, ``_Encoding`` of text (netCDF)."""
    text = h5py.check_string_dtype(np.dtype(spec.dtype))
    found = {"long_name": spec.long_name, "units": spec.units, "_Encoding": text.encoding if text else ""}
    return {key: value for key, value in found.items() if value}


def label_axes(handle: h5py.File, specs: dict[str, Spec]) -> None:
    """Make the coordinates dimension scales and attach every other dataset's axes to them."""
    for name, spec in specs.items():
        if len(spec.dims) != len(spec.shape):
            raise ValueError(f"results layout: dataset {name} has {len(spec.shape)} axes but names {spec.dims}")
        if spec.is_coordinate(name):
            handle[name].make_scale(spec.dims[0])
    for name, spec in specs.items():
        if spec.is_coordinate(name):
            continue
        group = name.rpartition("/")[0]
        for axis, dim in enumerate(spec.dims):
            scale = f"{group}/{dim}" if group and f"{group}/{dim}" in specs else dim
            if scale not in specs or not specs[scale].is_coordinate(scale):
                raise ValueError(f"results layout: dataset {name} names dimension {dim}, which has no coordinate")
            handle[name].dims[axis].attach_scale(handle[scale])


def _create(handle: h5py.File, name: str, spec: Spec) -> h5py.Dataset:
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)  # every chunk written now: the file never grows
    if spec.data is not None:
        data = np.asarray(spec.data, dtype=spec.dtype)
        return handle.create_dataset(name, data=data, chunks=spec.chunks, fletcher32=True, dcpl=dcpl)
    return handle.create_dataset(name, shape=spec.shape, dtype=spec.dtype, chunks=spec.chunks,
                                 fillvalue=spec.fill, fletcher32=True, dcpl=dcpl)
