"""Writing a results file: create it or resume it, one writer at a time, units marked done only once stored.

The writer builds a new file aside and renames it into place (:mod:`gdchaos.store.format`), then
switches to SWMR mode so other processes (the TUI, h5py in a notebook) can read the file while it
is written. A unit of work is marked done only after its arrays are written and flushed without
error, so a killed run, or one stopped by a full disk, loses at most the units in flight. HDF5 file
locking is off for readers and writers alike (a reader's lock would make a writer resuming the run
fail to open it); a lock file next to the results file keeps a second writer out
(:class:`gdchaos.store.lock.Lock`). An existing file is untrusted until checked
(:mod:`gdchaos.store.verify`).
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from gdchaos.analysis.sweep import SweepAnalysis
from gdchaos.config import SweepConfig
from gdchaos.engine.units import Unit
from gdchaos.errors import GdchaosError
from gdchaos.store.format import (CREATING, FORMAT, UNIT_ORIGIN, Spec, aside, attributes, build, datasets,
                                  planned_bytes)
from gdchaos.store.lock import Lock
from gdchaos.store.reader import open_handle
from gdchaos.store.recover import clear_status_flags
from gdchaos.store.verify import DamagedFile, check_chunk_indexes, check_size, check_structure, is_complete

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # the disk (or a quota, or a file size limit) is full
_HDF5_ERRNO = re.compile(r"errno = (\d+)")


class DiskFull(GdchaosError):
    """A write failed for lack of space; finished units are kept and a rerun continues."""


class Writer:
    """An open results file in SWMR write mode, guarded by a lock file against a second writer."""

    def __init__(self, handle: h5py.File, lock: Lock, path: Path) -> None:
        self.file = handle
        self.path = path
        self._lock = lock

    # ----------------------------------------------------------- lifecycle
    @classmethod
    def create_or_resume(cls, path: str | Path, config: SweepConfig, units: list[Unit], *, n_params: int,
                         layout: list[dict], fingerprint: str, overwrite: bool = False) -> "Writer":
        """Open ``path`` to continue the same config on the same data, or create it.

        ``overwrite`` replaces a gdchaos results file made with another config (and nothing else).
        A file whose creation was interrupted is created again; a new file's size (every array is
        allocated at creation) is checked against the free disk space first.
        """
        path = Path(path)
        lock = Lock.acquire(path)
        try:
            _remove_leftovers(path)
            try:
                state = _inspect(path, overwrite)
                handle = _open_existing(path, config, fingerprint) if state == "results" and not overwrite else None
            except DamagedFile as exc:
                raise GdchaosError(f"output: {exc}; its finished units can be salvaged with `gdchaos merge "
                                   f"{path} -o NEW.h5`, then rerun with -o NEW.h5") from None
            if handle is None:
                specs = datasets(config, units, n_params, len(layout))
                check_space(path, specs)
                _create(path, specs, attributes(config, n_params=n_params, layout=layout, fingerprint=fingerprint),
                        layout)
                handle = h5py.File(path, "r+", libver="latest", locking=False)
            handle.swmr_mode = True
        except BaseException:
            lock.release()
            raise
        return cls(handle, lock, path)

    def close(self) -> None:
        """Flush and close the file, then release the lock."""
        try:
            if self.file.id.valid:
                with self._writing():
                    self.file.flush()
                    self.file.close()
        finally:
            if self.file.id.valid:
                _close_quietly(self.file)
            self._lock.release()

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------- writing
    @property
    def units(self) -> list[Unit]:
        """The file's units (its plan is the truth on resume: an older gdchaos may have split the sweep
        differently from today's planner)."""
        return [Unit(index, *map(int, row)) for index, row in enumerate(self.file["units"][:])]

    def pending(self, units: list[Unit]) -> list[Unit]:
        """Units not yet marked done."""
        done = self.file["unit_done"][:]
        return [unit for unit in units if not done[unit.index]]

    def write_initial_params(self, ic_start: int, params: np.ndarray) -> None:
        """Reference parameters theta(0) of initial conditions ic_start.. (n, P)."""
        with self._writing():
            self.file["initial_params"][ic_start:ic_start + params.shape[0]] = params

    def write_unit(self, unit: Unit, arrays: dict[str, np.ndarray], epochs_done: int, *,
                   done: bool) -> None:
        """Write a unit's arrays (complete, or partial) and flush.

        ``epochs_done``: epochs the unit has trained, 1..T+1 with the whole ball, then on past T+1
        while its references train towards the target (at most ``tau_epochs`` + 1).
        """
        es, ic = slice(unit.eta_start, unit.eta_stop), slice(unit.ic_start, unit.ic_stop)
        with self._writing():
            for name, values in arrays.items():
                self.file[name][es, ic] = values
            self.file["unit_epochs"][unit.index] = epochs_done
            self.file.flush()  # data first, then the flag that says they are complete
            if done:
                self.file["unit_done"][unit.index] = 1
                self.file.flush()

    def write_unit_origin(self, unit: Unit, host: str, cpu: str) -> None:
        """Record the host and CPU model computing ``unit`` (files of older gdchaos have no such record)."""
        with self._writing():
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
        with self._writing():
            self.file["trajectories"][unit.eta_start:unit.eta_stop, keep[0]:keep[-1] + 1, :, column, :] = \
                theta[:, rows]

    def write_analysis(self, analysis: SweepAnalysis) -> None:
        """Store per-eta summaries and per-IC fits (:func:`gdchaos.store.analysis.analyse_file`)."""
        with self._writing():
            for group, fields in (("summary", analysis.summary), ("fit", analysis.fits)):
                for name, values in fields.items():
                    if f"{group}/{name}" in self.file:  # files of older versions lack some
                        self.file[f"{group}/{name}"][:] = values
            self.file.flush()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A failed write closes the file at once (no half-written unit is ever marked done) and says why."""
        try:
            yield
        except (OSError, RuntimeError) as exc:  # h5py raises RuntimeError when a flush fails
            _close_quietly(self.file)
            raise write_error(self.path, exc) from None


def write_error(path: Path, exc: Exception) -> GdchaosError:
    """One line for a failed write: :class:`DiskFull` when the disk (or a quota) is full."""
    number = getattr(exc, "errno", None)
    if number is None:
        found = _HDF5_ERRNO.search(str(exc))
        number = int(found.group(1)) if found else None
    if number in FULL:
        return DiskFull(f"disk full: {path.resolve().parent} has no space left for {path.name}; free space "
                        "and rerun the same command (finished units are kept)")
    reason = os.strerror(number) if number else str(exc).splitlines()[0]
    return GdchaosError(f"output: cannot write {path}: {reason}; rerun the same command to continue "
                        "(finished units are kept)")


def _close_quietly(handle: h5py.File) -> None:
    try:
        handle.close()
    except Exception:  # the failure is reported already; the rerun recovers the file
        pass


def _inspect(path: Path, overwrite: bool) -> str:
    """What is at ``path``: "missing", "results", "interrupted" (a creation that never finished) or
    "damaged" (an HDF5 file that ``overwrite`` may replace); anything else raises: only gdchaos
    results files are ever opened for writing or replaced."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    if not stat.S_ISREG(mode):
        kind = "a symlink" if stat.S_ISLNK(mode) else "not a regular file"
        raise GdchaosError(f"output: {path} is {kind}; gdchaos writes and replaces only its own results "
                           "files: choose another -o")
    try:
        check_size(path)
    except DamagedFile:
        if overwrite:
            return "damaged"
        raise
    try:
        with open_handle(path) as handle:  # as SWMR while flagged "open for write": readable without clearing
            if handle.attrs.get("format") != FORMAT:
                if len(handle.attrs) == 0 and len(handle) == 0:
                    state = "interrupted"  # created by an older gdchaos that stopped at once
                else:
                    raise GdchaosError(f"output: {path} is not a gdchaos results file; gdchaos replaces only "
                                       "its own files: choose another -o")
            else:
                state = "results" if is_complete(handle) else "interrupted"
    except (OSError, RuntimeError, KeyError):
        raise GdchaosError(f"output: {path} is not a readable HDF5 file; gdchaos replaces only its own "
                           "results files: choose another -o") from None
    clear_status_flags(path)  # ours, and its writer was killed (we hold the lock): reopen it for writing
    return state


def _open_existing(path: Path, config: SweepConfig, fingerprint: str) -> h5py.File:
    handle = h5py.File(path, "r+", libver="latest", locking=False)
    try:
        check_structure(handle, path)
        check_chunk_indexes(handle, path)  # now, without SWMR: a damaged index fails at once
        stored = json.loads(handle.attrs["identity"])
        wanted = json.loads(config.identity())
        if stored != wanted:
            differing = sorted(key for key in set(stored) | set(wanted) if stored.get(key) != wanted.get(key))
            raise GdchaosError(f"output: {path} was made with a different config ({', '.join(differing)} "
                               "differ); use --overwrite to replace it or -o for another file")
        if handle.attrs.get("dataset_fingerprint") != fingerprint:
            raise GdchaosError(f"output: {path} was made with other data for {config.dataset} (fingerprint "
                               f"{handle.attrs.get('dataset_fingerprint')}, these data {fingerprint}); point "
                               "--data-dir at the data it was made with, or use -o for another file")
    except BaseException:
        handle.close()
        raise
    return handle


def check_space(path: Path, specs: dict[str, Spec]) -> None:
    """Raise :class:`DiskFull`, naming what to lower, when a new file of ``specs`` at ``path`` would not
    fit the free space of its folder (the nearest existing one)."""
    folder = path.resolve().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    needed = planned_bytes(specs)
    if needed <= free:
        return
    hint = "free space, choose another -o, or lower --ics, --replicas, --epochs or --etas"
    trajectory_bytes = specs["trajectories"].nbytes if "trajectories" in specs else 0
    if trajectory_bytes:
        hint += (f"; {trajectory_bytes / 1e6:,.1f} MB of it are trajectories: choose fewer --trajectory-ics, "
                 "a larger --trajectory-every or float32")
    raise DiskFull(f"disk full: {path.name} needs {needed / 1e6:,.1f} MB but {folder} has "
                   f"{free / 1e6:,.1f} MB free; {hint}")


def _create(path: Path, specs, attrs, layout) -> None:
    """Build the file aside and rename it into place; nothing is left at either name if it fails."""
    temporary = aside(path)
    try:
        build(temporary, specs, attrs, layout)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as exc:
        temporary.unlink(missing_ok=True)
        raise write_error(path, exc) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _remove_leftovers(path: Path) -> None:
    """Files a killed creation of ``path`` left aside (we hold the lock: nobody is building them)."""
    prefix = f".{path.name}{CREATING}-"
    for leftover in path.parent.iterdir():
        if not leftover.name.startswith(prefix):
            continue
        try:
            if stat.S_ISREG(os.lstat(leftover).st_mode):
                leftover.unlink()
        except OSError:
            pass
