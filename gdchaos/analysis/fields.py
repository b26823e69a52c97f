"""The names and codes of what a sweep records and what its analysis reports.

Record codes in ``reached_epoch`` and ``diverged_epoch`` (epochs are >= 0): NEVER, the target was
never reached within the budget, or the network never diverged; NOT_COMPUTED, the work is not done
yet. SUMMARY_FIELDS are the per-eta statistics (n_eta,) stored under ``summary/`` and FIT_FIELDS the
per-initial-condition fit results (n_eta, q) under ``fit/`` (docs/results-format.md). The TANGENT_*
fields are stored beside them only in files made with ``tangent`` on (docs/tangent.md).
"""
from __future__ import annotations

NEVER = -1
NOT_COMPUTED = -2

SUMMARY_FIELDS = ("lambda_mean", "lambda_std", "lambda_ci_low", "lambda_ci_high", "rho", "rho_ci_low",
                  "rho_ci_high", "tau_mean", "tau_std", "tau_median", "n_reached", "n_ic", "n_diverged",
                  "n_chaotic", "sharpness_late_median")
FIT_FIELDS = ("lyapunov", "slope", "eq3", "r2", "start", "end", "tau", "saturation")
TANGENT_SUMMARY_FIELDS = ("lambda_tangent_mean", "lambda_tangent_std", "lambda_tangent_ci_low",
                          "lambda_tangent_ci_high", "rho_tangent", "rho_tangent_ci_low", "rho_tangent_ci_high",
                          "lambda_tangent_window_mean", "lambda_tangent_window_std")
TANGENT_FIT_FIELDS = ("lambda_tangent", "lambda_tangent_window")
