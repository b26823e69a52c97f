"""The results file: one HDF5 file holds everything a sweep produces (layout: docs/results-format.md).

Writers create every dataset at once (chunked, compressed, filled with "not computed" values) and
then switch to SWMR mode, so other processes (the TUI, h5py in a notebook) can read the file while
it is written. A unit of work is marked done only after its arrays are written and flushed, so a
killed run loses at most the units in flight. HDF5 file locking is off for readers and writers
alike (a reader's lock would make a writer resuming the run fail to open the file); a lock file
next to the results file keeps a second writer out.
"""
from __future__ import annotations

import builtins
import fcntl
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gdchaos import __version__
from gdchaos.errors import GdchaosError
from gdchaos.h5recover import clear_status_flags

FORMAT = "gdchaos-sweep"
FORMAT_VERSION = 1
NOT_COMPUTED = -2  # reached_epoch / diverged_epoch of work not yet done
NEVER = -1  # target never reached within the budget / network never diverged

# per-eta summary (n_eta,) and per-initial-condition fit (n_eta, q) datasets
SUMMARY_FIELDS = ("lambda_mean", "lambda_std", "lambda_ci_low", "lambda_ci_high", "rho", "rho_ci_low",
                  "rho_ci_high", "tau_mean", "tau_std", "tau_median", "n_reached", "n_ic", "n_diverged",
                  "n_chaotic", "sharpness_late_median")
FIT_FIELDS = ("lyapunov", "slope", "eq3", "r2", "start", "end", "tau", "saturation")


@dataclass(frozen=True)
class Unit:
    """A self-contained unit of work: learning rates [eta_start, eta_stop) x ICs [ic_start, ic_stop)."""

    index: int
    eta_start: int
    eta_stop: int
    ic_start: int
    ic_stop: int


class Writer:
    """An open results file in SWMR write mode, guarded by a lock file against a second writer."""

    def __init__(self, handle: h5py.File, lock: Any) -> None:
        self.file = handle
        self._lock = lock

    # ----------------------------------------------------------- lifecycle
    @classmethod
    def create_or_resume(cls, path: str | Path, config, units: list[Unit], *, n_params: int,
                         layout: list[dict], fingerprint: str, overwrite: bool = False) -> "Writer":
        """Open ``path`` to continue the same config, or create it (``overwrite`` replaces any file)."""
        path = Path(path)
        lock = _acquire_lock(path)
        try:
            if path.exists() and not overwrite:
                handle = _open_existing(path, config)
            else:
                handle = _create(path, config, units, n_params=n_params, layout=layout,
                                 fingerprint=fingerprint)
            handle.swmr_mode = True
        except BaseException:
            _release_lock(lock)
            raise
        return cls(handle, lock)

    def close(self) -> None:
        """Flush and close the file, then release the lock."""
        if self.file.id.valid:
            self.file.flush()
            self.file.close()
        _release_lock(self._lock)

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------- writing
    def pending(self, units: list[Unit]) -> list[Unit]:
        """Units not yet marked done."""
        done = self.file["unit_done"][:]
        return [unit for unit in units if not done[unit.index]]

    def write_initial_params(self, ic_start: int, params: np.ndarray) -> None:
        """Reference parameters theta(0) of initial conditions ic_start.. (n, P)."""
        self.file["initial_params"][ic_start:ic_start + params.shape[0]] = params

    def write_unit(self, unit: Unit, arrays: dict[str, np.ndarray], epochs_done: int, *,
                   done: bool) -> None:
        """Write a unit's arrays (complete, or partial) and flush.

        ``epochs_done``: epochs the unit has trained, 1..T+1 with the whole ball, then on past T+1
        while its references train towards the target (at most ``tau_epochs`` + 1).
        """
        es, ic = slice(unit.eta_start, unit.eta_stop), slice(unit.ic_start, unit.ic_stop)
        for name, values in arrays.items():
            self.file[name][es, ic] = values
        self.file["unit_epochs"][unit.index] = epochs_done
        if done:
            self.file.flush()  # data first, then the flag that says they are complete
            self.file["unit_done"][unit.index] = 1
        self.file.flush()

    def write_trajectory(self, unit: Unit, column: int, theta: np.ndarray) -> None:
        """Parameters (n_eta_unit, n_ic_unit, M+1, P) of the unit's networks at trajectory epoch ``column``."""
        saved = self.file["trajectory_ics"][:]
        keep = np.flatnonzero((saved >= unit.ic_start) & (saved < unit.ic_stop))
        if keep.size == 0:
            return
        rows = saved[keep] - unit.ic_start
        self.file["trajectories"][unit.eta_start:unit.eta_stop, keep[0]:keep[-1] + 1, :, column, :] = theta[:, rows]

    def write_analysis(self, summary: dict[str, np.ndarray], fits: dict[str, np.ndarray]) -> None:
        """Store per-eta summaries and per-IC fits (computed with the config's analysis table)."""
        for name, values in summary.items():
            self.file[f"summary/{name}"][:] = values
        for name, values in fits.items():
            self.file[f"fit/{name}"][:] = values
        self.file.flush()


def _create(path: Path, config, units: list[Unit], *, n_params: int, layout: list[dict],
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
    summary = handle.create_group("summary")
    for name in SUMMARY_FIELDS:
        summary.create_dataset(name, shape=(n_eta,), dtype="f8", fillvalue=np.nan).dims[0].attach_scale(eta)
    fit = handle.create_group("fit")
    for name in FIT_FIELDS:
        fit.create_dataset(name, shape=(n_eta, q), dtype="f8", fillvalue=np.nan).dims[0].attach_scale(eta)
    return handle


def _open_existing(path: Path, config) -> h5py.File:
    clear_status_flags(path)  # a writer killed earlier leaves the file flagged "open for write"
    try:
        handle = h5py.File(path, "r+", libver="latest", locking=False)
    except OSError:
        raise GdchaosError(f"output: {path} exists and is not a readable HDF5 file; use --overwrite or another -o") from None
    if handle.attrs.get("format") != FORMAT:
        handle.close()
        raise GdchaosError(f"output: {path} is not a gdchaos results file; use --overwrite or another -o")
    stored = json.loads(handle.attrs["identity"])
    wanted = json.loads(config.identity())
    if stored != wanted:
        handle.close()
        differing = sorted(key for key in set(stored) | set(wanted) if stored.get(key) != wanted.get(key))
        raise GdchaosError(f"output: {path} was made with a different config ({', '.join(differing)} "
                           "differ); use --overwrite to replace it or -o for another file")
    return handle


def _acquire_lock(path: Path):
    lock_path = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = builtins.open(lock_path, "w")
    except OSError as exc:
        raise GdchaosError(f"output: cannot write {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise GdchaosError(f"output: {path} is being written by another gdchaos run") from None
    return handle


def _release_lock(handle) -> None:
    try:
        os.unlink(handle.name)
    except OSError:
        pass
    handle.close()


# ==================================================================== reading
class Results:
    """Read access to a results file, finished or still being written (SWMR).

    Arrays are read from disk on each access; call :meth:`refresh` to see a live writer's progress.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.file = open_handle(self.path)
        except (OSError, ValueError):
            raise GdchaosError(f"{self.path}: not a readable HDF5 file") from None
        if self.file.attrs.get("format") != FORMAT:
            self.file.close()
            raise GdchaosError(f"{self.path}: not a gdchaos results file")
        version = int(self.file.attrs.get("format_version", 0))
        if version > FORMAT_VERSION:
            self.file.close()
            raise GdchaosError(f"{self.path}: format version {version} is newer than this gdchaos "
                               f"reads ({FORMAT_VERSION}); upgrade gdchaos")

    def refresh(self) -> None:
        """See what a live writer has flushed since the last read."""
        for item in self.file.values():
            if isinstance(item, h5py.Dataset):
                item.refresh()
        for group in ("summary", "fit"):
            for item in self.file.get(group, {}).values():
                item.refresh()

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "Results":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --------------------------------------------------------------- content
    @property
    def config(self):
        """The run's :class:`~gdchaos.config.SweepConfig`."""
        from gdchaos.config import from_dict

        return from_dict(json.loads(self.file.attrs["config"]))

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.file.attrs)

    @property
    def eta(self) -> np.ndarray:
        return self.file["eta"][:]

    def __getitem__(self, name: str) -> np.ndarray:
        """Any dataset by name, e.g. ``results["distances"]`` (n_eta, q, M, T+1)."""
        return self.file[name][()]

    @property
    def units(self) -> list[Unit]:
        return [Unit(i, *map(int, row)) for i, row in enumerate(self.file["units"][:])]

    def progress(self) -> tuple[int, int]:
        """(units done, units in all)."""
        done = self.file["unit_done"][:]
        return int(done.sum()), int(done.size)

    def eta_complete(self) -> np.ndarray:
        """(n_eta,) bool: every unit covering this learning rate is done."""
        complete = np.ones(len(self.eta), dtype=bool)
        done = self.file["unit_done"][:]
        for unit in self.units:
            if not done[unit.index]:
                complete[unit.eta_start:unit.eta_stop] = False
        return complete

    @property
    def trajectories(self) -> h5py.Dataset:
        """Lazy (n_eta, n_saved_ics, M+1, n_epochs, P) parameters; index it to read only what you need."""
        if "trajectories" not in self.file:
            raise GdchaosError(f"{self.path}: no trajectories stored (run with --save-trajectories)")
        return self.file["trajectories"]

    def trajectory(self, eta_index: int, ic: int, network: int = 0) -> np.ndarray:
        """(n_epochs, P) parameters of one network (0: the reference, j: replica j) of IC ``ic``."""
        saved = list(self.file["trajectory_ics"][:]) if "trajectory_ics" in self.file else []
        if ic not in saved:
            raise GdchaosError(f"{self.path}: trajectories stored for ICs {saved}, not {ic}")
        return self.trajectories[eta_index, saved.index(ic), network]

    def recompute_distances(self, norm: str = "l1", block: int = 16) -> np.ndarray:
        """d_j(t) of every stored replica to its reference, in float64, from the trajectories.

        L1: sum_k |w_k - w_k^(j)|, L2: sqrt(sum_k (w_k - w_k^(j))^2); shape (n_eta, n_saved_ics, M,
        n_epochs). Reads ``block`` epochs of one ball at a time.
        """
        if norm not in ("l1", "l2"):
            raise GdchaosError(f"norm: unknown {norm!r}; allowed: l1, l2")
        data = self.trajectories
        n_eta, n_ics, ball, n_epochs, _ = data.shape
        out = np.empty((n_eta, n_ics, ball - 1, n_epochs))
        for e in range(n_eta):
            for i in range(n_ics):
                for start in range(0, n_epochs, block):
                    chunk = data[e, i, :, start:start + block].astype(np.float64)
                    diff = chunk[1:] - chunk[:1]
                    if norm == "l1":
                        out[e, i, :, start:start + block] = np.abs(diff).sum(axis=-1)
                    else:
                        out[e, i, :, start:start + block] = np.sqrt((diff * diff).sum(axis=-1))
        return out

    def summary(self) -> dict[str, np.ndarray]:
        """Per-eta summary arrays (NaN where not analysed yet), with ``eta``.

        Fields missing from a file of an older gdchaos are recomputed from its arrays.
        """
        from gdchaos.report import late_sharpness

        out = read_group(self.file, "summary", SUMMARY_FIELDS, self.eta.shape)
        missing = _missing(self.file, "summary", SUMMARY_FIELDS)
        if missing - {"sharpness_late_median"}:
            out.update((name, values) for name, values in self._analysis()[0].items() if name in missing)
        elif missing:
            out["sharpness_late_median"] = late_sharpness(self.file, self.eta_complete())
        out["eta"] = self.eta
        return out

    def fits(self) -> dict[str, np.ndarray]:
        """Per-initial-condition fit arrays (n_eta, q); missing ones (older files) are recomputed."""
        out = read_group(self.file, "fit", FIT_FIELDS, self.file["distances"].shape[:2])
        missing = _missing(self.file, "fit", FIT_FIELDS)
        if missing:
            out.update((name, values) for name, values in self._analysis()[1].items() if name in missing)
        return out

    def _analysis(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Summary and fits of the complete learning rates, fitted now with the run's parameters."""
        from gdchaos.report import analyse_file

        return analyse_file(self.file, self.config.fit_params())


def read_group(handle: h5py.File, group: str, fields: tuple[str, ...],
               shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Datasets ``group/<field>``; NaN arrays of ``shape`` for those a file lacks (older versions)."""
    return {name: handle[f"{group}/{name}"][:] if f"{group}/{name}" in handle else np.full(shape, np.nan)
            for name in fields}


def _missing(handle: h5py.File, group: str, fields: tuple[str, ...]) -> set[str]:
    """Fields of ``group`` the file lacks."""
    return {name for name in fields if f"{group}/{name}" not in handle}


def unit_fractions(epochs: np.ndarray, done: np.ndarray, config) -> np.ndarray:
    """Share (0..1) of each unit's work done, from ``unit_epochs`` and ``unit_done``.

    An epoch of 0..T trains the M+1 networks of every ball, one past T only the reference, and the
    tau phase counts against its whole budget (it often ends early): units in flight stay below 1.
    """
    ball_epochs, ball = config.epochs + 1, config.replicas + 1
    tau_epochs = max(config.tau_epochs - config.epochs, 0)
    work = np.minimum(epochs, ball_epochs) * ball + np.clip(epochs - ball_epochs, 0, tau_epochs)
    return np.where(done, 1.0, np.minimum(work / (ball_epochs * ball + tau_epochs), 0.99))


def open_handle(path: str | Path) -> h5py.File:
    """``path`` read-only as a SWMR reader, without HDF5 file locking so it never blocks a writer."""
    return h5py.File(path, "r", libver="latest", swmr=True, locking=False)


def open(path: str | Path) -> Results:  # noqa: A001 - the documented API name
    """Open a results file for reading (works while a run is still writing it)."""
    return Results(path)
