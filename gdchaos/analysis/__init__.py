"""Curves to numbers: local Lyapunov exponents, lambda_nMLE, rho and the training time tau.

No training here, and no file format: :mod:`.params` (every tunable), :mod:`.fit` (one eps-ball ->
Lambda, R^2, window; its window search is one Numba pass, :func:`gdchaos.backend.best_window`),
:mod:`.summary` (one learning rate -> lambda_nMLE, rho, <tau> with bootstrap intervals), :mod:`.sweep`
(a whole sweep, and the one refit policy), :mod:`.fields` (names and record codes), :mod:`.authors`
(the authors' per-eta distance files). The method and its parameters are in docs/analysis.md.
"""
from gdchaos.analysis.fields import (FIT_FIELDS, NEVER, NOT_COMPUTED, SUMMARY_FIELDS, TANGENT_FIT_FIELDS,
                                     TANGENT_SUMMARY_FIELDS)
from gdchaos.analysis.fit import FitDebug, LocalFit, first_divergence, fit_ball, fit_local_exponent, fit_table
from gdchaos.analysis.params import ESTIMATORS, FitParams
from gdchaos.analysis.summary import EtaSummary, summarize
from gdchaos.analysis.sweep import SweepAnalysis, analyse_arrays, analyse_sweep, late_median, summary_arrays
from gdchaos.analysis.tangent import finite_time_exponents, tangent_statistics, window_exponents

__all__ = ["ESTIMATORS", "EtaSummary", "FIT_FIELDS", "FitDebug", "FitParams", "LocalFit", "NEVER", "NOT_COMPUTED",
           "SUMMARY_FIELDS", "SweepAnalysis", "TANGENT_FIT_FIELDS", "TANGENT_SUMMARY_FIELDS", "analyse_arrays",
           "analyse_sweep", "first_divergence", "fit_ball",
           "fit_local_exponent", "fit_table", "finite_time_exponents", "late_median", "summarize",
           "summary_arrays", "tangent_statistics", "window_exponents"]
