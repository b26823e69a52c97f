"""The tangent curves of a learning rate to numbers: finite-time exponents per IC, their mean, spread and rho.

The curve L(t) = ln ||Phi_t xi_1||_1 (:mod:`gdchaos.engine.tangent`) needs no fit: the finite-time
exponent over [0, T] is lambda_T = (L(T) - L(0)) / T, and over the ball fit's window [start, end]
(fields ``start``, ``end`` of :func:`gdchaos.analysis.fit_table`) it is (L(end) - L(start)) /
(end - start). docs/tangent.md.
"""
from __future__ import annotations

import math

import numpy as np

from gdchaos.analysis.fields import TANGENT_FIT_FIELDS
from gdchaos.analysis.params import FitParams
from gdchaos.analysis.summary import bootstrap_intervals


def finite_time_exponents(curves: np.ndarray) -> np.ndarray:
    """lambda_T = (L(T) - L(0)) / T of each curve (..., T+1); NaN where a curve is not finite (divergence)."""
    epochs = curves.shape[-1] - 1
    with np.errstate(invalid="ignore"):
        exponent = (curves[..., -1] - curves[..., 0]) / epochs
    return np.where(np.all(np.isfinite(curves), axis=-1), exponent, np.nan)


def window_exponents(curves: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(L(end) - L(start)) / (end - start) of each curve (q, T+1) over its window; NaN without a window."""
    out = np.full(curves.shape[0], np.nan)
    ok = np.isfinite(start) & np.isfinite(end)
    ok[ok] = end[ok] > start[ok]
    rows = np.flatnonzero(ok)
    first, last = start[rows].astype(np.int64), end[rows].astype(np.int64)
    out[rows] = (curves[rows, last] - curves[rows, first]) / (last - first)
    return out


def tangent_statistics(curves: np.ndarray, start: np.ndarray, end: np.ndarray,
                       params: FitParams) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """One learning rate's tangent summary (TANGENT_SUMMARY_FIELDS) and per-IC exponents (TANGENT_FIT_FIELDS).

    ``curves`` (q, T+1); ``start``, ``end`` (q,) the ball fits' windows (NaN: none). Over the ICs
    whose curve is finite: the mean and population std of lambda_T, its bootstrap interval, and
    rho_tangent = 100 |{lambda_T > lambda_min}| / q (diverged ICs count as not chaotic) with its
    interval (:func:`gdchaos.analysis.summary.bootstrap_intervals`, the ball's resampling).
    """
    lam = finite_time_exponents(curves)
    window = window_exponents(curves, start, end)
    ok = np.isfinite(lam)
    chaotic = ok & (lam > params.lambda_min)
    lambda_ci, rho_ci = bootstrap_intervals(lam, ok, chaotic, params)
    in_window = window[np.isfinite(window)]
    summary = {
        "lambda_tangent_mean": float(lam[ok].mean()) if ok.any() else math.nan,
        "lambda_tangent_std": float(lam[ok].std()) if ok.any() else math.nan,
        "lambda_tangent_ci_low": lambda_ci[0] if lambda_ci else math.nan,
        "lambda_tangent_ci_high": lambda_ci[1] if lambda_ci else math.nan,
        "rho_tangent": 100.0 * float(chaotic.sum()) / lam.size,
        "rho_tangent_ci_low": rho_ci[0] if rho_ci else math.nan,
        "rho_tangent_ci_high": rho_ci[1] if rho_ci else math.nan,
        "lambda_tangent_window_mean": float(in_window.mean()) if in_window.size else math.nan,
        "lambda_tangent_window_std": float(in_window.std()) if in_window.size else math.nan,
    }
    return summary, dict(zip(TANGENT_FIT_FIELDS, (lam, window)))
