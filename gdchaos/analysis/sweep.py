"""A whole sweep's records to the numbers users publish: per-IC fits and per-eta summaries.

:func:`analyse_sweep` is the one refit policy every reader follows (the run at its end, ``gdchaos
analyze``, ``gdchaos plot``, the TUI, :meth:`gdchaos.store.Results.analysis`): a learning rate is
analysed only once all its units are done; what the run stored is read back; a complete learning rate
without a stored analysis (a live or interrupted run, or a file of an older gdchaos) is fitted now,
with the run's own parameters. Given other parameters, the caller passes no stored analysis and every
complete learning rate is fitted again.
"""
from __future__ import annotations

import math
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass

import numpy as np

from gdchaos.analysis.fields import FIT_FIELDS, NEVER, SUMMARY_FIELDS, TANGENT_FIT_FIELDS, TANGENT_SUMMARY_FIELDS
from gdchaos.analysis.fit import first_divergence, fit_ball, fit_table
from gdchaos.analysis.params import FitParams
from gdchaos.analysis.summary import EtaSummary, summarize
from gdchaos.analysis.tangent import tangent_statistics

# (distances (k, q, M, T+1), reached_epoch (k, q)) of the learning rates with the given indices
Loader = Callable[[list[int]], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class SweepAnalysis:
    """Per-eta summary arrays (n_eta,) and per-IC fit arrays (n_eta, q); NaN where not analysed.

    ``summaries`` holds the :class:`EtaSummary` of every learning rate fitted by this call (None
    where the stored analysis was read back, or the learning rate is not complete); ``complete``
    says which learning rates have all their units done.
    """

    eta: np.ndarray
    summary: dict[str, np.ndarray]
    fits: dict[str, np.ndarray]
    summaries: tuple[EtaSummary | None, ...]
    complete: np.ndarray


def analyse_sweep(eta: np.ndarray, complete: np.ndarray, n_ic: int, load: Loader, params: FitParams, *,
                  budget: int | None, stored: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None,
                  sharpness: np.ndarray | None = None,
                  cache: MutableMapping[int, tuple[EtaSummary, dict[str, np.ndarray]]] | None = None,
                  diverged_epoch: np.ndarray | None = None, tangent: np.ndarray | None = None) -> SweepAnalysis:
    """The refit policy (module docstring) for the learning rates ``eta`` with ``complete`` flags.

    ``stored`` is the (summary, fits) a run wrote with ``params``, or None; a stored learning rate is
    one whose ``n_ic`` is set. ``load`` reads the records of the learning rates to fit; ``cache``
    (eta index -> fit) keeps fits across calls of a reader that comes back to the same file and
    parameters. ``sharpness`` (n_eta, q, n_s; an array or an HDF5 dataset, sliced per learning rate) gives
    ``sharpness_late_median`` (:func:`late_median`). ``diverged_epoch`` (n_eta, q, M+1; an array or an
    HDF5 dataset) says which balls diverged (None: only non-finite distances tell). ``tangent``
    (n_eta, q, T+1; an array or an HDF5 dataset) adds the TANGENT_* fields of every complete learning
    rate (:func:`gdchaos.analysis.tangent.tangent_statistics`; no fit: computed again on each call).
    """
    n_eta = len(eta)
    summary = {name: np.full(n_eta, np.nan) for name in SUMMARY_FIELDS}
    fits = {name: np.full((n_eta, n_ic), np.nan) for name in FIT_FIELDS}
    summaries: list[EtaSummary | None] = [None] * n_eta
    read_back = np.zeros(n_eta, dtype=bool)
    diverged = None if diverged_epoch is None else np.asarray(diverged_epoch[()])  # read once, small
    if stored is not None:
        read_back = complete & np.isfinite(stored[0]["n_ic"])
        if diverged is not None:  # a stored count below the records: made without them
            read_back &= ~(stored[0]["n_diverged"] < (first_divergence(diverged) >= 0).sum(axis=1))
        for name in SUMMARY_FIELDS:
            summary[name][read_back] = stored[0][name][read_back]
        for name in FIT_FIELDS:
            fits[name][read_back] = stored[1][name][read_back]
    cache = {} if cache is None else cache
    to_fit = np.flatnonzero(complete & ~read_back).tolist()
    todo = [e for e in to_fit if e not in cache]
    if todo:
        distances, reached = load(todo)
        fitted, fit_rows = analyse_arrays(eta[todo], distances, reached, params, budget=budget,
                                          diverged_epoch=None if diverged is None else diverged[todo])
        for k, e in enumerate(todo):
            cache[e] = (fitted[k], {name: values[k] for name, values in fit_rows.items()})
    for e in to_fit:
        summaries[e], row = cache[e]
        for name, values in summary_arrays([summaries[e]]).items():
            summary[name][e] = values[0]
        for name in FIT_FIELDS:
            fits[name][e] = row[name]
        if sharpness is not None:
            summary["sharpness_late_median"][e] = late_median(sharpness[e:e + 1])[0]
    if tangent is not None:
        add_tangent(summary, fits, tangent, complete, params)
    return SweepAnalysis(np.asarray(eta), summary, fits, tuple(summaries), complete)


def add_tangent(summary: dict[str, np.ndarray], fits: dict[str, np.ndarray], tangent: np.ndarray,
                complete: np.ndarray, params: FitParams) -> None:
    """The TANGENT_* fields of the ``complete`` learning rates into ``summary`` and ``fits`` (NaN elsewhere),
    over the windows in ``fits`` (``start``, ``end``)."""
    n_eta, n_ic = fits["start"].shape
    summary.update({name: np.full(n_eta, np.nan) for name in TANGENT_SUMMARY_FIELDS})
    fits.update({name: np.full((n_eta, n_ic), np.nan) for name in TANGENT_FIT_FIELDS})
    for e in np.flatnonzero(complete):
        values, rows = tangent_statistics(np.asarray(tangent[e]), fits["start"][e], fits["end"][e], params)
        for name, value in values.items():
            summary[name][e] = value
        for name, value in rows.items():
            fits[name][e] = value


def analyse_arrays(eta: np.ndarray, distances: np.ndarray, reached_epoch: np.ndarray | None,
                   params: FitParams, *, budget: int | None = None, complete: np.ndarray | None = None,
                   diverged_epoch: np.ndarray | None = None) -> tuple[list[EtaSummary | None], dict[str, np.ndarray]]:
    """Fit every ball of every (complete) learning rate.

    ``distances`` (n_eta, q, M, T+1); ``reached_epoch`` (n_eta, q) or None when tau is unknown;
    ``diverged_epoch`` (n_eta, q, M+1) the divergence records, or None when there are none
    (:func:`gdchaos.analysis.fit.fit_ball`: a ball with a diverged network is not fitted).
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
        ball_fits = fit_ball(distances[e], params, None if diverged_epoch is None else diverged_epoch[e])
        table = fit_table(ball_fits)
        for name in FIT_FIELDS:
            fits[name][e] = table[name]
        reached = np.full(q, NEVER, dtype=np.int64) if reached_epoch is None else reached_epoch[e].astype(np.int64)
        summaries.append(summarize(ball_fits, reached, params, eta=float(eta[e]), budget=budget))
    return summaries, fits


def summary_arrays(summaries: list[EtaSummary | None]) -> dict[str, np.ndarray]:
    """Per-eta summaries as the (n_eta,) arrays stored under ``summary/`` (NaN where missing;
    ``sharpness_late_median`` comes from the sharpness records, not from the fits)."""
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
