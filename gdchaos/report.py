"""From a results file to the numbers users publish: per-IC fits and per-eta summaries."""
from __future__ import annotations

import json
import math

import h5py
import numpy as np

from gdchaos.analysis import EtaSummary, FitParams, fit_ball, fit_table, summarize
from gdchaos.results import FIT_FIELDS, SUMMARY_FIELDS

TABLE_COLUMNS = ("eta", "lambda_mean", "lambda_std", "rho", "tau_mean", "tau_std", "n_reached", "n_ic")


def analyse_arrays(eta: np.ndarray, distances: np.ndarray, reached_epoch: np.ndarray | None,
                   params: FitParams, *, budget: int | None = None,
                   complete: np.ndarray | None = None) -> tuple[list[EtaSummary | None], dict[str, np.ndarray]]:
    """Fit every ball of every (complete) learning rate.

    ``distances`` (n_eta, q, M, T+1); ``reached_epoch`` (n_eta, q) or None when tau is unknown.
    Returns one summary per eta (None where not complete) and per-IC fit arrays (n_eta, q).
    """
    n_eta, q = distances.shape[:2]
    complete = np.ones(n_eta, dtype=bool) if complete is None else complete
    fits = {name: np.full((n_eta, q), np.nan) for name in FIT_FIELDS}
    summaries: list[EtaSummary | None] = []
    for e in range(n_eta):
        if not complete[e]:
            summaries.append(None)
            continue
        ball_fits = fit_ball(distances[e], params)
        table = fit_table(ball_fits)
        for name in FIT_FIELDS:
            fits[name][e] = table[name]
        reached = np.full(q, -1, dtype=np.int64) if reached_epoch is None else reached_epoch[e].astype(np.int64)
        summaries.append(summarize(ball_fits, reached, params, eta=float(eta[e]), budget=budget))
    return summaries, fits


def summary_arrays(summaries: list[EtaSummary | None]) -> dict[str, np.ndarray]:
    """Per-eta summaries as the (n_eta,) arrays stored under ``summary/`` (NaN where missing)."""
    out = {name: np.full(len(summaries), np.nan) for name in SUMMARY_FIELDS}
    for e, summary in enumerate(summaries):
        if summary is None:
            continue
        for name in SUMMARY_FIELDS:
            if name == "sharpness_late_median":
                continue
            if name.endswith(("_ci_low", "_ci_high")):
                interval = getattr(summary, name.rsplit("_ci_", 1)[0] + "_ci")
                value = interval[0 if name.endswith("low") else 1] if interval else math.nan
            else:
                value = getattr(summary, name)
            out[name][e] = math.nan if value is None else value
    return out


def analyse_file(handle: h5py.File, params: FitParams) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Summary and fit arrays of an open results file (learning rates whose units are all done)."""
    budget = int(json.loads(handle.attrs["config"])["tau_epochs"])
    done = handle["unit_done"][:]
    complete = np.ones(handle["eta"].shape[0], dtype=bool)
    for index, (eta_start, eta_stop, _, _) in enumerate(handle["units"][:]):
        if not done[index]:
            complete[eta_start:eta_stop] = False
    summaries, fits = analyse_arrays(handle["eta"][:], handle["distances"][()], handle["reached_epoch"][()],
                                     params, budget=budget, complete=complete)
    summary = summary_arrays(summaries)
    summary["sharpness_late_median"] = late_sharpness(handle, complete)
    return summary, fits


def late_sharpness(handle: h5py.File, complete: np.ndarray) -> np.ndarray:
    """:func:`late_median` of the file's sharpness at complete learning rates; NaN elsewhere or without it."""
    if "sharpness" not in handle:
        return np.full(complete.shape, np.nan)
    return np.where(complete, late_median(handle["sharpness"][()]), np.nan)


def late_median(sharpness: np.ndarray) -> np.ndarray:
    """Median sharpness over the last half of the recorded epochs and all ICs, per eta (n_eta,).

    The edge-of-stability prediction is that it settles near 2/eta; NaN (diverged) values are
    ignored, and an eta with none left gives NaN.
    """
    late = sharpness[:, :, sharpness.shape[2] // 2:].reshape(sharpness.shape[0], -1)
    out = np.full(late.shape[0], np.nan)
    for e, values in enumerate(late):
        values = values[np.isfinite(values)]
        if values.size:
            out[e] = np.median(values)
    return out
