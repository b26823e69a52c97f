"""Analysis of eps-ball distance curves: local Lyapunov exponents, lambda_nMLE, rho and training time tau.

Pure numpy, no training: :mod:`.params` (every tunable), :mod:`.fit` (one eps-ball -> Lambda, R^2,
window), :mod:`.summary` (one learning rate -> lambda_nMLE, rho, <tau> with bootstrap intervals).
The method and its parameters are described in docs/analysis.md.
"""
from gdchaos.analysis.fit import FitDebug, LocalFit, fit_ball, fit_local_exponent, fit_table
from gdchaos.analysis.params import ESTIMATORS, FitParams
from gdchaos.analysis.summary import EtaSummary, summarize

__all__ = ["ESTIMATORS", "EtaSummary", "FitDebug", "FitParams", "LocalFit", "fit_ball", "fit_local_exponent",
           "fit_table", "summarize"]
