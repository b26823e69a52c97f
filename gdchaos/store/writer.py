"""Writing a results file: create it or resume it, one writer at a time, units marked done only once stored.

The writer creates every dataset at once (:func:`gdchaos.store.format.create`) and then switches to
SWMR mode, so other processes (the TUI, h5py in a notebook) can read the file while it is written. A
unit of work is marked done only after its arrays are written and flushed, so a killed run loses at
most the units in flight. HDF5 file locking is off for readers and writers alike (a reader's lock
would make a writer resuming the run fail to open the file); a lock file next to the results file
keeps a second writer out.
"""
from __future__ import annotations

import builtins
import fcntl
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gdchaos.analysis.sweep import SweepAnalysis
from gdchaos.config import SweepConfig
from gdchaos.engine.units import Unit
from gdchaos.errors import GdchaosError
from gdchaos.store.format import FORMAT, UNIT_ORIGIN, create
from gdchaos.store.recover import clear_status_flags


class Writer:
    """An open results file in SWMR write mode, guarded by a lock file against a second writer."""

    def __init__(self, handle: h5py.File, lock: Any) -> None:
        self.file = handle
        self._lock = lock

    # ----------------------------------------------------------- lifecycle
    @classmethod
    def create_or_resume(cls, path: str | Path, config: SweepConfig, units: list[Unit], *, n_params: int,
                         layout: list[dict], fingerprint: str, overwrite: bool = False) -> "Writer":
        """Open ``path`` to continue the same config, or create it (``overwrite`` replaces any file)."""
        path = Path(path)
        lock = _acquire_lock(path)
        try:
            if path.exists() and not overwrite:
                handle = _open_existing(path, config)
            else:
                handle = create(path, config, units, n_params=n_params, layout=layout,
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

    def write_unit_origin(self, unit: Unit, host: str, cpu: str) -> None:
        """Record the host and CPU model computing ``unit`` (files of older gdchaos have no such record)."""
        for name, text in zip(UNIT_ORIGIN, (host, cpu)):
            if name in self.file:
                length = self.file[name].dtype.itemsize
                self.file[name][unit.index] = text.encode("utf-8")[:length].decode("utf-8", "ignore").encode()

    def write_trajectory(self, unit: Unit, column: int, theta: np.ndarray) -> None:
        """Parameters (n_eta_unit, n_ic_unit, M+1, P) of the unit's networks at trajectory epoch ``column``."""
        saved = self.file["trajectory_ics"][:]
        keep = np.flatnonzero((saved >= unit.ic_start) & (saved < unit.ic_stop))
        if keep.size == 0:
            return
        rows = saved[keep] - unit.ic_start
        self.file["trajectories"][unit.eta_start:unit.eta_stop, keep[0]:keep[-1] + 1, :, column, :] = theta[:, rows]

    def write_analysis(self, analysis: SweepAnalysis) -> None:
        """Store per-eta summaries and per-IC fits (:func:`gdchaos.store.analysis.analyse_file`)."""
        for name, values in analysis.summary.items():
            self.file[f"summary/{name}"][:] = values
        for name, values in analysis.fits.items():
            self.file[f"fit/{name}"][:] = values
        self.file.flush()


def _open_existing(path: Path, config: SweepConfig) -> h5py.File:
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
