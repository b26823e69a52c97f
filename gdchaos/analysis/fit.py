"""Local network Lyapunov exponent of one eps-ball (paper Eq. 3), with the fit window found automatically.

Pipeline for one initial condition (docs/analysis.md has the reasoning and the parameters):

1. D(t) = M^-1 sum_j d_j(t) and y(t) = ln D(t), over the finite, positive prefix of the record.
2. Smoothed slope s(t) = (y(t+h) - y(t-h)) / 2h (one-sided at the ends of the record).
3. Saturation cut: the first epoch t >= max(min_start, t_on) with s < sat_frac * max(s) for sat_hold
   epochs, t_on being the first epoch with s above that threshold (a slow start is not a saturation).
4. Window [a, b], min_start <= b <= cut: a piecewise-linear least-squares model of y on [0, cut + sat_hold]
   (optional transient, exponential phase [a, b], saturated phase), segment count penalised as in BIC.
   Every (a, b) is scored at once from cumulative sums.
5. Estimates: ``slope`` of the line on [a, b]; ``eq3`` = Eq. 3, (1/tau) ln(D(tau) / D(0)), at the
   saturation time tau where the exponential line meets the saturated line (in [b, b+1]), ln D(tau)
   read off the exponential line and D(0) as measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, overload

import numpy as np

from gdchaos import backend
from gdchaos.analysis.fields import NEVER
from gdchaos.analysis.params import FitParams
from gdchaos.errors import GdchaosError

_RESOLUTION = 1e-6  # ln D residuals below this are treated as exact (keeps ln(SSE) finite)


@dataclass(frozen=True)
class LocalFit:
    """Fit of one eps-ball. Epochs are inclusive; -1 and NaN mean "not available".

    ``lyapunov`` is ``eq3`` or ``slope`` (``method`` says which); ``slope`` and ``r2`` belong to the
    line fitted to ln D over the exponential-phase window ``[start, end]``; ``tau`` is the saturation
    time used by Eq. 3; ``saturation`` is the slope-criterion cut that bounds the window search (-1:
    none within the record); ``n_valid`` is the number of leading epochs used (finite, D > 0);
    ``diverged_at`` the first epoch with a non-finite distance, mean distance or (given
    ``diverged_epoch``, :func:`fit_ball`) network loss (-1: none).
    """

    lyapunov: float
    slope: float
    eq3: float
    r2: float
    start: int
    end: int
    tau: float
    saturation: int
    diverged: bool
    method: str
    n_valid: int
    diverged_at: int


@dataclass(frozen=True)
class FitDebug:
    """Intermediate arrays of one fit: ln D, smoothed slope, threshold, and every candidate window.

    ``windows`` holds flat arrays (start, end, slope, intercept, r2, score, steepest, tau) over the
    candidates, ``chosen`` indexes the window kept; ``stop`` is the last epoch of the segmented model.
    """

    log_d: np.ndarray
    slope_smooth: np.ndarray
    threshold: float
    saturation: int
    stop: int
    windows: dict[str, np.ndarray]
    chosen: int

    def report(self, top: int = 10) -> str:
        """Printable: ln D and smoothed slope for epochs 0..stop, the cut, and the ``top`` windows by score."""
        w = self.windows
        lines = [f"epochs used: {self.log_d.size}; slope threshold {self.threshold:.4g}; "
                 f"saturation cut {self.saturation}; model on epochs 0..{self.stop}", "  t       ln D     slope"]
        lines += [f"{t:3d} {self.log_d[t]:10.4f} {self.slope_smooth[t]:9.4f}" for t in range(self.stop + 1)]
        lines.append(f"{w['score'].size} candidate windows, lowest (best) scores first (* = chosen; "
                     "~ = not the steepest segment, not eligible):")
        best = np.argsort(w["score"], kind="stable")[:top].tolist()
        for k in best + ([] if self.chosen in best else [self.chosen]):
            mark = "*" if k == self.chosen else (" " if w["steepest"][k] else "~")
            lines.append(f"{mark} [{w['start'][k]:4d}, {w['end'][k]:4d}] "
                         f"score {w['score'][k]:10.3f}  R^2 {w['r2'][k]:.5f}  slope {w['slope'][k]:.5f}")
        return "\n".join(lines)


def _no_fit(params: FitParams, debug: bool, *, diverged: bool, n_valid: int,
            diverged_at: int) -> LocalFit | tuple[LocalFit, None]:
    nan = float("nan")
    fit = LocalFit(lyapunov=nan, slope=nan, eq3=nan, r2=nan, start=-1, end=-1, tau=nan, saturation=-1,
                   diverged=diverged, method=params.estimator, n_valid=n_valid, diverged_at=diverged_at)
    return (fit, None) if debug else fit


def _as_float_array(values: object) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GdchaosError(f"distances: must be a numeric array; got {exc}") from None


def smoothed_slope(y: np.ndarray, halfwidth: int) -> np.ndarray:
    """s(t) = (y(min(t+h, n-1)) - y(max(t-h, 0))) / (min(t+h, n-1) - max(t-h, 0)), for y of length n >= 2."""
    t = np.arange(y.size)
    hi = np.minimum(t + halfwidth, y.size - 1)
    lo = np.maximum(t - halfwidth, 0)
    return (y[hi] - y[lo]) / (hi - lo)


def saturation_epoch(slope: np.ndarray, params: FitParams) -> tuple[int, float]:
    """First epoch t >= max(min_start, t_on) with slope < sat_frac * max(slope) on [t, t + sat_hold).

    t_on is the first epoch where the slope exceeds the threshold. Returns (epoch, threshold); the epoch
    is -1 when the curve never grows (max slope <= 0) or never saturates within the record.
    """
    peak = float(slope.max())
    threshold = params.sat_frac * peak
    if peak <= 0.0:
        return -1, threshold
    n = slope.size
    above = slope >= threshold
    t_on = int(np.argmax(above))
    highs = np.concatenate(([0], np.cumsum(above)))
    t = np.arange(n)
    quiet = highs[np.minimum(t + params.sat_hold, n)] == highs[t]
    quiet[: max(params.min_start, t_on)] = False
    return (int(np.argmax(quiet)) if quiet.any() else -1), threshold


def _search(y: np.ndarray, first_end: int, last_end: int, stop: int, params: FitParams,
            record: bool) -> tuple[int, np.ndarray, np.ndarray | None]:
    """The window search of :func:`window_grid` (best index, best window's columns, all windows' columns)."""
    return backend.best_window(y, first_end, last_end, stop, params.min_len,
                               params.segment_penalty, (stop + 1.0) * _RESOLUTION**2, record)


def window_grid(y: np.ndarray, first_end: int, last_end: int, stop: int,
                params: FitParams) -> dict[str, np.ndarray]:
    """Score every exponential-phase window [a, b] (first_end <= b <= last_end, b - a + 1 >= min_len).

    Model of ln D on [0, stop]: an optional transient line on [0, a-1], the exponential line on [a, b],
    an optional saturated line on [b+1, stop]. Each line is the least-squares fit from cumulative sums:
    s = S_ty / S_tt, SSE = S_yy - s S_ty (centred sums; fewer than two points: s = 0, SSE = 0). Score
    (BIC): N ln(SSE / N) + segment_penalty ln N per optional segment present, N = stop + 1, SSE the
    total squared residual plus N * 1e-12. ``steepest``: the window's slope is >= the transient's
    (when a > 1) and the saturated line's (when it has >= 2 points). ``tau``: where the exponential
    line meets the saturated line, kept within [b, b + 1] (b when they do not cross).
    Returns flat arrays start, end, slope, intercept, r2 (of the window line), score, steepest, tau,
    start outermost.
    """
    _, _, table = _search(y, first_end, last_end, stop, params, record=True)
    columns = dict(zip(backend.WINDOW_COLUMNS, table))
    for name in ("start", "end"):
        columns[name] = columns[name].astype(np.int64)
    columns["steepest"] = columns["steepest"] == 1.0
    return columns


@overload
def fit_local_exponent(d: np.ndarray, params: FitParams | None = ..., *, debug: Literal[False] = ...) -> LocalFit: ...
@overload
def fit_local_exponent(d: np.ndarray, params: FitParams | None = ..., *,
                       debug: Literal[True]) -> tuple[LocalFit, FitDebug | None]: ...


def fit_local_exponent(d: np.ndarray, params: FitParams | None = None, *,
                       debug: bool = False) -> LocalFit | tuple[LocalFit, FitDebug | None]:
    """Local exponent of one eps-ball, Eq. 3: Lambda = (1/tau) ln(D(tau) / D(0)), D = M^-1 sum_j d_j.

    ``d`` is either the replica distances d_j(t), shape (M, T+1), or their mean D(t), shape (T+1,).
    A ball with any non-finite distance is ``diverged`` and gets no estimate; D is used up to its
    first zero (replicas merged with the reference). With ``debug=True`` returns ``(fit, FitDebug)``
    (the debug part is None when there was nothing to fit).
    """
    params = params or FitParams()
    ball = _as_float_array(d)
    if ball.ndim == 1:
        ball = ball[None, :]
    if ball.ndim != 2 or ball.shape[0] < 1 or ball.shape[1] < 2:
        raise GdchaosError(f"distances: must have shape (T+1,) or (M, T+1) with T >= 1; got {np.shape(d)}")
    if (ball < 0).any():
        raise GdchaosError("distances: must be >= 0 (they are L1 distances); got a negative value")
    bad = ~np.isfinite(ball).all(axis=0)
    if bad.any():
        first = int(np.argmax(bad))
        return _no_fit(params, debug, diverged=True, n_valid=first, diverged_at=first)
    with np.errstate(over="ignore"):
        d_mean = ball.mean(axis=0)
    overflow = ~np.isfinite(d_mean)  # finite d_j whose sum exceeds the float range
    if overflow.any():
        first = int(np.argmax(overflow))
        return _no_fit(params, debug, diverged=True, n_valid=first, diverged_at=first)
    zero = d_mean <= 0.0
    n_valid = int(np.argmax(zero)) if zero.any() else d_mean.size
    if n_valid < params.min_len:
        return _no_fit(params, debug, diverged=False, n_valid=n_valid, diverged_at=-1)
    y = np.log(d_mean[:n_valid])
    slope_s = smoothed_slope(y, params.slope_halfwidth)
    saturation, threshold = saturation_epoch(slope_s, params)
    last_end = max(saturation if saturation >= 0 else n_valid - 1, params.min_len - 1)
    first_end = min(max(params.min_start, params.min_len - 1), last_end)
    stop = min(last_end + params.sat_hold, n_valid - 1) if saturation >= 0 else n_valid - 1
    # the exponential phase is the steepest segment; lowest score; exact ties: longer, then later window
    k, best, _ = _search(y, first_end, last_end, stop, params, record=False)
    start, end, slope, intercept, r2, _, _, tau = best.tolist()
    eq3 = (intercept + slope * tau - float(y[0])) / tau
    if not np.isfinite([slope, eq3]).all():  # no estimate rather than an infinite or NaN one
        return _no_fit(params, debug, diverged=False, n_valid=n_valid, diverged_at=-1)
    fit = LocalFit(lyapunov=eq3 if params.estimator == "eq3" else slope, slope=slope, eq3=eq3, r2=r2,
                   start=int(start), end=int(end), tau=tau, saturation=saturation, diverged=False,
                   method=params.estimator, n_valid=n_valid, diverged_at=-1)
    if not debug:
        return fit
    return fit, FitDebug(log_d=y, slope_smooth=slope_s, threshold=threshold, saturation=saturation,
                         stop=stop, windows=window_grid(y, first_end, last_end, stop, params), chosen=k)


def first_divergence(diverged_epoch: np.ndarray) -> np.ndarray:
    """First epoch any network of a ball diverged, over the last axis (M+1: reference, replicas).

    ``diverged_epoch`` holds epochs >= 0 or the codes NEVER and NOT_COMPUTED (neither is a
    divergence); the result has one axis less, NEVER where no network of the ball diverged.
    """
    epochs = np.asarray(diverged_epoch)
    if not np.issubdtype(epochs.dtype, np.integer) or epochs.ndim < 1:
        raise GdchaosError(f"diverged_epoch: must be integers with a last axis of M+1 networks; "
                           f"got dtype {epochs.dtype}, shape {epochs.shape}")
    never = np.iinfo(np.int64).max
    first = np.where(epochs >= 0, epochs.astype(np.int64), never).min(axis=-1, initial=never)
    return np.where(first == never, NEVER, first)


def fit_ball(distances: np.ndarray, params: FitParams | None = None,
             diverged_epoch: np.ndarray | None = None) -> list[LocalFit]:
    """Fit every initial condition of one learning rate: ``distances`` has shape (q, M, T+1).

    ``diverged_epoch`` (q, M+1), the first non-finite loss of each network: a ball with any network
    diverged (an epoch >= 0, at any epoch) is ``diverged`` and not fitted, whatever its distances.
    """
    arr = _as_float_array(distances)
    if arr.ndim != 3:
        raise GdchaosError(f"distances: must have shape (q, M, T+1); got {arr.shape}")
    params = params or FitParams()
    if diverged_epoch is None:
        return [fit_local_exponent(ball, params) for ball in arr]
    first = first_divergence(diverged_epoch)
    if first.shape != arr.shape[:1]:
        raise GdchaosError(f"diverged_epoch: must have shape ({arr.shape[0]}, M+1); got {np.shape(diverged_epoch)}")
    return [fit_local_exponent(ball, params) if epoch == NEVER else
            _no_fit(params, False, diverged=True, n_valid=min(int(epoch), arr.shape[2]), diverged_at=int(epoch))
            for ball, epoch in zip(arr, first.tolist())]


def fit_table(fits: list[LocalFit]) -> dict[str, np.ndarray]:
    """The fits as columns, one array per LocalFit field (for storage and vectorised statistics)."""
    return {name: np.array([getattr(f, name) for f in fits]) for name in LocalFit.__dataclass_fields__}
