"""Reading a results file, finished or still being written (SWMR), without ever disturbing its writer."""
from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gdchaos.analysis.params import FitParams
from gdchaos.analysis.sweep import SweepAnalysis
from gdchaos.checks import check_choice
from gdchaos.config import SweepConfig
from gdchaos.engine.units import Unit
from gdchaos.errors import GdchaosError
from gdchaos.store.analysis import analyse_file, complete_etas, stored_config
from gdchaos.store.format import FORMAT, FORMAT_VERSION
from gdchaos.store.frames import summary_frame, summary_rows, to_xarray
from gdchaos.store.recover import open_for_write
from gdchaos.store.verify import DamagedFile, check_size, check_structure, readable, reason_of

NORMS = ("l1", "l2")  # distances between a replica and its reference: recorded online (l1), or from trajectories


class Results:
    """Read access to a results file, finished or still being written (SWMR).

    Arrays are read from disk on each access; call :meth:`refresh` to see a live writer's progress.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            check_size(self.path)
        except OSError:
            raise GdchaosError(f"{self.path}: not a readable file") from None
        try:
            self.file = open_handle(self.path)
        except (OSError, ValueError, RuntimeError):
            raise GdchaosError(f"{self.path}: not a readable HDF5 file") from None
        try:
            if self.file.attrs.get("format") != FORMAT:
                raise GdchaosError(f"{self.path}: not a gdchaos results file")
            version = int(self.file.attrs.get("format_version", 0))
            if version > FORMAT_VERSION:
                raise GdchaosError(f"{self.path}: format version {version} is newer than this gdchaos "
                                   f"reads ({FORMAT_VERSION}); upgrade gdchaos")
            check_structure(self.file, self.path, complete=False)
        except (OSError, RuntimeError, KeyError) as exc:  # the root's own metadata fails its checksum
            self.file.close()
            raise DamagedFile(f"{self.path}: damaged metadata ({reason_of(exc)})") from None
        except BaseException:
            self.file.close()
            raise

    def refresh(self) -> None:
        """See what a live writer has flushed since the last read."""
        if not self.file.swmr_mode:  # opened while no writer had it: open again, as SWMR if one has now
            self.file.close()
            self.file = open_handle(self.path)
            return
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
    def config(self) -> SweepConfig:
        """The run's :class:`~gdchaos.config.SweepConfig`."""
        return stored_config(self.file)

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.file.attrs)

    @property
    def eta(self) -> np.ndarray:
        return self.file["eta"][:]

    def __getitem__(self, name: str) -> np.ndarray:
        """Any dataset by name, e.g. ``results["distances"]`` (n_eta, q, M, T+1)."""
        with readable(self.path):
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
        return complete_etas(self.file)

    def unit_status(self) -> tuple[np.ndarray, np.ndarray]:
        """Per unit: done (bool) and epochs trained so far (``unit_epochs``; past T in the tau phase)."""
        return self.file["unit_done"][:].astype(bool), self.file["unit_epochs"][:]

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
        with readable(self.path):
            return self.trajectories[eta_index, saved.index(ic), network]

    def recompute_distances(self, norm: str = "l1", block: int = 16) -> np.ndarray:
        """d_j(t) of every stored replica to its reference, in float64, from the trajectories.

        L1: sum_k |w_k - w_k^(j)|, L2: sqrt(sum_k (w_k - w_k^(j))^2); shape (n_eta, n_saved_ics, M,
        n_epochs). Reads ``block`` epochs of one ball at a time.
        """
        check_choice("norm", norm, NORMS)
        data = self.trajectories
        n_eta, n_ics, ball, n_epochs, _ = data.shape
        out = np.empty((n_eta, n_ics, ball - 1, n_epochs))
        with readable(self.path):
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

    def analysis(self, params: FitParams | None = None, *, refit: bool = False, distances: np.ndarray | None = None,
                 cache: MutableMapping | None = None) -> SweepAnalysis:
        """Per-eta summaries and per-IC fits of every complete learning rate, by the one refit policy
        (:func:`gdchaos.store.analysis.analyse_file`: stored where the run wrote them, fitted now elsewhere)."""
        with readable(self.path):
            return analyse_file(self.file, params, refit=refit, distances=distances, cache=cache)

    def summary(self) -> dict[str, np.ndarray]:
        """Per-eta summary arrays (NaN where a learning rate is not complete), with ``eta``."""
        return {**self.analysis().summary, "eta": self.eta}

    def fits(self) -> dict[str, np.ndarray]:
        """Per-initial-condition fit arrays (n_eta, q); NaN where a learning rate is not complete."""
        return self.analysis().fits

    def summary_rows(self, params: FitParams | None = None, *, distances: np.ndarray | None = None) -> list[dict]:
        """One JSON-safe dict per learning rate, what ``gdchaos analyze --json`` prints (every complete
        learning rate fitted now, with ``params``, default the run's; :func:`gdchaos.store.frames.summary_rows`)."""
        analysis = self.analysis(params, refit=True, distances=distances)
        return summary_rows(self.config, analysis, sharpness="sharpness" in self.file)

    def summary_frame(self, params: FitParams | None = None):
        """A pandas DataFrame, one row per eta (the index), the keys of ``gdchaos analyze --json`` as
        columns (intervals as ``lambda_ci_low`` ... ``rho_ci_high``; needs the ``xarray`` extra)."""
        return summary_frame(self.summary_rows(params))

    def to_xarray(self, group: str | None = None):
        """The file as a lazy xarray Dataset, every axis named and labelled; ``group``: "summary" or
        "fit" (needs the ``xarray`` extra; format version 2, see ``gdchaos upgrade``)."""
        return to_xarray(self.file, self.path, group)


def open_handle(path: str | Path) -> h5py.File:
    """``path`` read-only, without HDF5 file locking so it never blocks a writer.

    As a SWMR reader while a writer has the file open; otherwise as a plain reader: a SWMR reader
    retries metadata that fails its checksum for minutes (a writer may be half-way through it),
    where a plain reader reports damage at once.
    """
    return h5py.File(path, "r", libver="latest", swmr=open_for_write(path), locking=False)


def open(path: str | Path) -> Results:  # noqa: A001 - the documented API name
    """Open a results file for reading (works while a run is still writing it)."""
    return Results(path)
