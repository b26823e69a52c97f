"""One learning rate's summary: lambda_nMLE, rho and the training time <tau>, with bootstrap intervals."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gdchaos.analysis.fit import LocalFit, fit_table
from gdchaos.analysis.params import FitParams
from gdchaos.checks import check_int
from gdchaos.errors import GdchaosError


@dataclass(frozen=True)
class EtaSummary:
    """Statistics over the q initial conditions of one learning rate (NaN / None: not defined).

    ``lambda_mean`` = lambda_nMLE, the mean of the local exponents over the ``n_fitted`` initial
    conditions that neither diverged nor lacked a fit; ``lambda_std`` their population standard deviation
    (ddof = 0, the paper's error bars). ``rho`` = 100 ``n_chaotic`` / ``n_ic`` with chaotic meaning
    R^2 > r2_min and Lambda > lambda_min (diverged ones count as not chaotic). ``tau_*`` are over the
    ``n_reached`` initial conditions whose reference reached the target accuracy within ``budget``
    epochs; the others are censored and left out. ``*_ci`` are percentile bootstrap intervals.
    """

    eta: float | None
    n_ic: int
    n_diverged: int
    n_fitted: int
    n_chaotic: int
    lambda_mean: float
    lambda_std: float
    lambda_ci: tuple[float, float] | None
    rho: float
    rho_ci: tuple[float, float] | None
    n_reached: int
    budget: int | None
    tau_mean: float
    tau_std: float
    tau_median: float
    estimator: str
    r2_min: float
    lambda_min: float

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON types; NaN becomes None and intervals become two-element lists."""
        return {key: json_safe(value) for key, value in asdict(self).items()}


def json_safe(value: Any) -> Any:
    """``value`` in plain JSON types: non-finite floats become None, tuples lists, in nested
    lists and dicts too (``json.dump(..., allow_nan=False)`` accepts it)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [json_safe(v) for v in value]
    return value


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    if values.size == 0:
        return math.nan, math.nan
    return float(values.mean()), float(values.std())


def bootstrap_intervals(lam: np.ndarray, ok: np.ndarray, chaotic: np.ndarray,
                        params: FitParams) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """Percentile bootstrap over initial conditions (resampled with replacement, all q each time).

    Each resample gives mean(Lambda over its ``ok`` members) and 100 mean(``chaotic``); the interval is
    the central ``ci_level`` quantile range of the resamples that define it. Deterministic given ``seed``.
    """
    if params.n_boot == 0:
        return None, None
    rng = np.random.default_rng(params.seed)
    idx = rng.integers(0, lam.size, size=(params.n_boot, lam.size))
    counts = ok[idx].sum(axis=1)
    sums = np.where(ok, lam, 0.0)[idx].sum(axis=1)
    means = np.divide(sums, counts, out=np.full(params.n_boot, np.nan), where=counts > 0)
    rhos = 100.0 * chaotic[idx].mean(axis=1)
    means = means[np.isfinite(means)]
    lambda_ci = _central_range(means, params.ci_level) if means.size else None
    return lambda_ci, _central_range(rhos, params.ci_level)


def _central_range(samples: np.ndarray, level: float) -> tuple[float, float]:
    low, high = np.quantile(samples, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(low), float(high)


def summarize(fits: Sequence[LocalFit], reached_epoch: np.ndarray, params: FitParams | None = None, *,
              eta: float | None = None, budget: int | None = None) -> EtaSummary:
    """Summary of one learning rate from its local fits and the epochs at which the targets were reached.

    lambda_nMLE = <Lambda_Omega(0)> over the non-diverged initial conditions; rho = 100 |{R^2 > r2_min and
    Lambda > lambda_min}| / q; <tau> = mean over the initial conditions with ``reached_epoch`` >= 0
    (-1 = not reached within ``budget``: censored, never averaged in).
    """
    params = params or FitParams()
    q = len(fits)
    if q == 0:
        raise GdchaosError("fits: must hold at least one initial condition; got none")
    reached = np.asarray(reached_epoch)
    if reached.shape != (q,) or not np.issubdtype(reached.dtype, np.integer):
        raise GdchaosError(f"reached_epoch: must be {q} integers, one per initial condition; "
                           f"got shape {reached.shape}, dtype {reached.dtype}")
    if budget is not None:
        check_int("budget", budget, 0)
    if (reached < -1).any() or (budget is not None and (reached > budget).any()):
        raise GdchaosError(f"reached_epoch: values must lie in [-1, {'budget' if budget is None else budget}] "
                           f"(-1 = target not reached); got [{reached.min()}, {reached.max()}]")
    table = fit_table(list(fits))
    lam = table["lyapunov"].astype(np.float64)
    diverged = table["diverged"].astype(bool)
    ok = ~diverged & np.isfinite(lam)
    chaotic = ok & (table["r2"] > params.r2_min) & (lam > params.lambda_min)
    lambda_mean, lambda_std = _mean_std(lam[ok])
    taus = reached[reached >= 0].astype(np.float64)
    tau_mean, tau_std = _mean_std(taus)
    lambda_ci, rho_ci = bootstrap_intervals(lam, ok, chaotic, params)
    return EtaSummary(
        eta=None if eta is None else float(eta), n_ic=q, n_diverged=int(diverged.sum()), n_fitted=int(ok.sum()),
        n_chaotic=int(chaotic.sum()), lambda_mean=lambda_mean, lambda_std=lambda_std, lambda_ci=lambda_ci,
        rho=100.0 * float(chaotic.sum()) / q, rho_ci=rho_ci, n_reached=int(taus.size),
        budget=None if budget is None else int(budget), tau_mean=tau_mean, tau_std=tau_std,
        tau_median=float(np.median(taus)) if taus.size else math.nan, estimator=params.estimator,
        r2_min=params.r2_min, lambda_min=params.lambda_min)
