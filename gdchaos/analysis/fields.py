"""The names and codes of what a sweep records and what its analysis reports.

Record codes in ``reached_epoch`` and ``diverged_epoch`` (epochs are >= 0): NEVER, the target was
never reached within the budget, or the network never diverged; NOT_COMPUTED, the work is not done
yet. SUMMARY_FIELDS are the per-eta statistics (n_eta,) stored under ``summary/`` and FIT_FIELDS the
per-initial-condition fit results (n_eta, q) under ``fit/`` (docs/results-format.md); their
DESCRIPTIONS give each field's ``long_name`` and ``units`` (the attributes a results file stores).
The TANGENT_* fields are stored beside them only in files made with ``tangent`` on (docs/tangent.md).
"""
from __future__ import annotations

NEVER = -1
NOT_COMPUTED = -2

SUMMARY_FIELDS = ("lambda_mean", "lambda_std", "lambda_ci_low", "lambda_ci_high", "rho", "rho_ci_low",
                  "rho_ci_high", "tau_mean", "tau_std", "tau_median", "n_reached", "n_ic", "n_diverged",
                  "n_chaotic", "sharpness_late_median")
FIT_FIELDS = ("lyapunov", "slope", "eq3", "r2", "start", "end", "tau", "saturation")

# field -> (long_name, units) of the summary and fit fields
SUMMARY_DESCRIPTIONS = {
    "lambda_mean": ("lambda_nMLE: mean local Lyapunov exponent over the fitted ICs", "1/epoch"),
    "lambda_std": ("standard deviation of the local exponents (ddof 0)", "1/epoch"),
    "lambda_ci_low": ("bootstrap interval of lambda_nMLE: lower end", "1/epoch"),
    "lambda_ci_high": ("bootstrap interval of lambda_nMLE: upper end", "1/epoch"),
    "rho": ("rho: share of chaotic ICs (R^2 > r2_min and Lambda > lambda_min)", "%"),
    "rho_ci_low": ("bootstrap interval of rho: lower end", "%"),
    "rho_ci_high": ("bootstrap interval of rho: upper end", "%"),
    "tau_mean": ("mean epochs to the target test accuracy (ICs that reached it)", "epochs"),
    "tau_std": ("standard deviation of tau (ICs that reached the target)", "epochs"),
    "tau_median": ("median of tau (ICs that reached the target)", "epochs"),
    "n_reached": ("ICs whose reference reached the target accuracy", "1"),
    "n_ic": ("initial conditions", "1"),
    "n_diverged": ("ICs with a diverged network", "1"),
    "n_chaotic": ("chaotic ICs", "1"),
    "sharpness_late_median": ("median top Hessian eigenvalue over ICs and the last half of the sharpness "
                              "epochs", "1"),
}
FIT_DESCRIPTIONS = {
    "lyapunov": ("local Lyapunov exponent Lambda (the estimator's)", "1/epoch"),
    "slope": ("slope of ln D over the exponential-phase window", "1/epoch"),
    "eq3": ("Eq. 3 at the saturation time tau", "1/epoch"),
    "r2": ("R^2 of the exponential-phase line", "1"),
    "start": ("first epoch of the exponential-phase window", "epochs"),
    "end": ("last epoch of the exponential-phase window", "epochs"),
    "tau": ("saturation time of Eq. 3", "epochs"),
    "saturation": ("saturation cut of the slope criterion (-1: none)", "epochs"),
}
TANGENT_SUMMARY_FIELDS = ("lambda_tangent_mean", "lambda_tangent_std", "lambda_tangent_ci_low",
                          "lambda_tangent_ci_high", "rho_tangent", "rho_tangent_ci_low", "rho_tangent_ci_high",
                          "lambda_tangent_window_mean", "lambda_tangent_window_std")
TANGENT_FIT_FIELDS = ("lambda_tangent", "lambda_tangent_window")
TANGENT_DESCRIPTIONS = {
    "lambda_tangent_mean": ("mean finite-time tangent exponent over [0, T] (ICs not diverged)", "1/epoch"),
    "lambda_tangent_std": ("standard deviation of the tangent exponents over [0, T] (ddof 0)", "1/epoch"),
    "lambda_tangent_ci_low": ("bootstrap interval of the mean tangent exponent: lower end", "1/epoch"),
    "lambda_tangent_ci_high": ("bootstrap interval of the mean tangent exponent: upper end", "1/epoch"),
    "rho_tangent": ("share of ICs whose tangent exponent exceeds lambda_min", "%"),
    "rho_tangent_ci_low": ("interval of rho_tangent: lower end", "%"),
    "rho_tangent_ci_high": ("interval of rho_tangent: upper end", "%"),
    "lambda_tangent_window_mean": ("mean tangent exponent over each ball fit's window", "1/epoch"),
    "lambda_tangent_window_std": ("standard deviation of the tangent exponents over the fit windows", "1/epoch"),
    "lambda_tangent": ("finite-time tangent exponent over [0, T]", "1/epoch"),
    "lambda_tangent_window": ("tangent exponent over the ball fit's window", "1/epoch"),
}
