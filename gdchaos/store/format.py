"""The layout of a results file (docs/results-format.md): every dataset, created at once.

A new file holds every dataset a sweep will fill, chunked and filled with "not computed" values
(NaN, NOT_COMPUTED), before the run switches to SWMR mode: readers then see a complete layout from
the start, and a unit's arrays are written in place as it trains.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from gdchaos import __version__
from gdchaos.analysis.fields import FIT_FIELDS, NOT_COMPUTED, SUMMARY_FIELDS
from gdchaos.config import SweepConfig
from gdchaos.engine.units import Unit
from gdchaos.errors import GdchaosError

FORMAT = "gdchaos-sweep"
FORMAT_VERSION = 1
UNIT_ORIGIN = {"unit_host": 64, "unit_cpu": 96}  # per-unit records of the machine: name -> bytes


def create(path: Path, config: SweepConfig, units: list[Unit], *, n_params: int, layout: list[dict],
            fingerprint: str) -> h5py.File:
    n_eta, q, m, t1 = len(config.etas), config.ics, config.replicas, config.epochs + 1
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # a reader still holding the old file keeps reading it, untruncated
        handle = h5py.File(path, "w", libver="latest", locking=False)
    except OSError as exc:
        raise GdchaosError(f"output: cannot write {path}: {exc.strerror or exc}") from None
    attrs = handle.attrs
    attrs["format"] = FORMAT
    attrs["format_version"] = FORMAT_VERSION
    attrs["gdchaos_version"] = __version__
    attrs["config"] = config.to_json()
    attrs["identity"] = config.identity()
    attrs["seed"] = config.seed
    attrs["dataset"] = config.dataset
    attrs["dataset_fingerprint"] = fingerprint
    attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    attrs["n_params"] = n_params
    attrs["layout"] = json.dumps(layout)

    eta = handle.create_dataset("eta", data=np.asarray(config.etas, dtype=np.float64))
    eta.make_scale("eta")

    def make(name, shape, chunks, dtype, fill, compress=False):
        # Per-epoch arrays are small and rewritten while a unit is in flight (live progress):
        # uncompressed chunks are overwritten in place, compressed ones would leak file space.
        extra = dict(compression="gzip", compression_opts=4, shuffle=True) if compress else {}
        dataset = handle.create_dataset(name, shape=shape, chunks=chunks, dtype=dtype, fillvalue=fill,
                                        **extra)
        if name != "initial_params" and not name.startswith("unit"):
            dataset.dims[0].attach_scale(eta)
        return dataset

    make("distances", (n_eta, q, m, t1), (1, 1, m, t1), "f8", np.nan)
    layers = make("layer_distances", (n_eta, q, m, len(layout), t1), (1, 1, m, len(layout), t1), "f8", np.nan)
    layers.attrs["tensors"] = json.dumps([tensor["name"] for tensor in layout])
    for name in ("loss", "train_accuracy", "test_accuracy"):
        make(name, (n_eta, q, t1), (1, 1, t1), "f8", np.nan)
    make("reached_epoch", (n_eta, q), (n_eta, q), "i4", NOT_COMPUTED)
    make("diverged_epoch", (n_eta, q, m + 1), (n_eta, q, m + 1), "i4", NOT_COMPUTED)
    params = make("initial_params", (q, n_params), (1, n_params), "f8", np.nan, compress=True)
    params.attrs["layout"] = json.dumps(layout)
    if config.sharpness_every:
        epochs = handle.create_dataset("sharpness_epochs", data=np.asarray(config.sharpness_epochs(), dtype=np.int32))
        n_s = epochs.shape[0]
        make("sharpness", (n_eta, q, n_s), (1, 1, n_s), "f8", np.nan)
        make("sharpness_iterations", (n_eta, q, n_s), (1, 1, n_s), "i4", 0)
    if config.save_trajectories:
        ics, epochs = config.trajectory_ic_list(), config.trajectory_epochs()
        handle.create_dataset("trajectory_ics", data=np.asarray(ics, dtype=np.int32))
        handle.create_dataset("trajectory_epochs", data=np.asarray(epochs, dtype=np.int32))
        # one chunk = one ball at one epoch, written once as training streams it. Uncompressed: the
        # size announced before the run is then what the file grows by (gzip saves only ~10-35%
        # on float64 weights, and the free-space check must not be optimistic)
        trajectories = handle.create_dataset(
            "trajectories", shape=(n_eta, len(ics), m + 1, len(epochs), n_params), dtype=config.trajectory_dtype,
            chunks=(1, 1, m + 1, 1, n_params), fillvalue=np.nan)
        trajectories.dims[0].attach_scale(eta)
        trajectories.attrs["layout"] = json.dumps(layout)
    handle.create_dataset("units", data=np.array(
        [[u.eta_start, u.eta_stop, u.ic_start, u.ic_stop] for u in units], dtype=np.int32))
    handle.create_dataset("unit_done", shape=(len(units),), dtype="i1", fillvalue=0)
    handle.create_dataset("unit_epochs", shape=(len(units),), dtype="i4", fillvalue=0)
    # where each unit was computed (docs/cluster.md): fixed-length UTF-8, writable in SWMR mode
    for name, length in UNIT_ORIGIN.items():
        handle.create_dataset(name, shape=(len(units),), dtype=h5py.string_dtype("utf-8", length))
    summary = handle.create_group("summary")
    for name in SUMMARY_FIELDS:
        summary.create_dataset(name, shape=(n_eta,), dtype="f8", fillvalue=np.nan).dims[0].attach_scale(eta)
    fit = handle.create_group("fit")
    for name in FIT_FIELDS:
        fit.create_dataset(name, shape=(n_eta, q), dtype="f8", fillvalue=np.nan).dims[0].attach_scale(eta)
    return handle
