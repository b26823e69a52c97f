"""The analysis of an open results file, by the one refit policy (:func:`gdchaos.analysis.analyse_sweep`)."""
from __future__ import annotations

import json
from collections.abc import MutableMapping

import h5py
import numpy as np

from gdchaos.analysis.fields import FIT_FIELDS, SUMMARY_FIELDS
from gdchaos.analysis.params import FitParams
from gdchaos.analysis.sweep import SweepAnalysis, analyse_sweep
from gdchaos.config import SweepConfig, from_dict


def stored_config(handle: h5py.File) -> SweepConfig:
    """The config a results file was made with."""
    return from_dict(json.loads(handle.attrs["config"]))


def complete_etas(handle: h5py.File) -> np.ndarray:
    """(n_eta,) bool: every unit covering this learning rate is done."""
    complete = np.ones(handle["eta"].shape[0], dtype=bool)
    done = handle["unit_done"][:]
    for index, (eta_start, eta_stop, _, _) in enumerate(handle["units"][:]):
        if not done[index]:
            complete[eta_start:eta_stop] = False
    return complete


def analyse_file(handle: h5py.File, params: FitParams | None = None, *, refit: bool = False,
                 distances: np.ndarray | None = None, cache: MutableMapping | None = None) -> SweepAnalysis:
    """Per-eta summaries and per-IC fits of the complete learning rates of an open results file.

    With the run's own fit parameters (``params`` None or equal to them) the analysis the run stored
    is read back and only complete learning rates without one are fitted now; ``refit``, other
    ``params`` or other ``distances`` (n_eta, q, M, T+1; e.g. recomputed in another norm) fit every
    complete learning rate again. ``cache``: see :func:`gdchaos.analysis.analyse_sweep`.
    """
    config = stored_config(handle)
    run_params = config.fit_params()
    params = run_params if params is None else params
    stored = None
    if not refit and distances is None and params == run_params:
        stored = _stored_analysis(handle)
    records = handle["distances"] if distances is None else distances

    def load(indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return records[indices], handle["reached_epoch"][indices]

    sharpness = handle["sharpness"] if "sharpness" in handle else None  # read only where fitted
    diverged = handle.get("diverged_epoch")  # None in files of an older gdchaos
    return analyse_sweep(handle["eta"][:], complete_etas(handle), config.ics, load, params,
                         budget=config.tau_epochs, stored=stored, sharpness=sharpness, cache=cache,
                         diverged_epoch=diverged, tangent=handle.get("tangent_log_distance"))


def _stored_analysis(handle: h5py.File) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """The ``summary/`` and ``fit/`` groups, or None when the file lacks a field (an older gdchaos)."""
    names = [f"summary/{name}" for name in SUMMARY_FIELDS] + [f"fit/{name}" for name in FIT_FIELDS]
    if not all(name in handle for name in names):
        return None
    return ({name: handle[f"summary/{name}"][:] for name in SUMMARY_FIELDS},
            {name: handle[f"fit/{name}"][()] for name in FIT_FIELDS})
