"""Tests of the analysis library (gdchaos.analysis) and of the authors' file reader (gdchaos.authors).

Synthetic eps-balls: ln D(t) = ln d0 + g(t) with g a known shape (exponential phase of rate r up to a
saturation time t_s, then flat, drifting or softly saturating), times independent lognormal noise
exp(sigma * N(0, 1)) for each of M = 5 replicas and each epoch (t = 0 included), T + 1 = 202 epochs.
"""
from __future__ import annotations

import itertools
import json
import math
import warnings

import h5py
import numpy as np
import pytest

from gdchaos.analysis import (
    FitParams,
    first_divergence,
    fit_ball,
    fit_local_exponent,
    fit_table,
    summarize,
)
from gdchaos.authors import is_authors_file, read_authors_file
from gdchaos.errors import GdchaosError

T1 = 202
RATES = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
SATURATIONS = (10, 20, 30, 50, 75, 100, 150)


def shape(rate: float, t_s: float, kind: str = "hard") -> np.ndarray:
    """g(t): slope ``rate`` up to t_s, then flat (hard), slope 0.03 rate (drift), or bent by a softplus knee."""
    t = np.arange(T1, dtype=np.float64)
    if kind == "hard":
        return rate * np.minimum(t, t_s)
    if kind == "drift":
        return rate * np.minimum(t, t_s) + 0.03 * rate * np.maximum(t - t_s, 0.0)
    if kind == "soft":
        return rate * t - rate * (np.logaddexp(0.0, t - t_s) - np.logaddexp(0.0, -t_s))
    raise ValueError(kind)


def ball(g: np.ndarray, sigma: float, seed: int, m: int = 5, d0: float = 2.54e-4) -> np.ndarray:
    """Replica distances (M, T+1): d0 exp(g(t)) times independent lognormal noise."""
    rng = np.random.default_rng(seed)
    return d0 * np.exp(g)[None, :] * np.exp(sigma * rng.standard_normal((m, g.size)))


def grid(min_growth: float, saturations: tuple[int, ...] = SATURATIONS) -> list[tuple[float, int]]:
    """(rate, t_s) pairs whose exponential phase grows ln D by at least ``min_growth``."""
    return [(r, ts) for r, ts in itertools.product(RATES, saturations) if r * ts >= min_growth]


def max_relative_error(kind: str, sigma: float, pairs: list[tuple[float, int]], seeds: range) -> dict[str, float]:
    """max |estimate / rate - 1| of ``lyapunov`` (default estimator, Eq. 3) and ``slope`` over pairs x seeds."""
    errors = np.array([[abs(fit.lyapunov / r - 1.0), abs(fit.slope / r - 1.0)]
                       for (r, ts), s in itertools.product(pairs, seeds)
                       for fit in [fit_local_exponent(ball(shape(r, ts, kind), sigma, s))]])
    return {"lyapunov": float(errors[:, 0].max()), "slope": float(errors[:, 1].max())}


# --- recovery of known exponents -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["hard", "drift"])
def test_recovers_rate_within_2_percent(kind: str) -> None:
    # rates 0.05..2 x t_s 10..150 with growth r t_s >= 3 (35 pairs), sigma 0.05 per replica, 8 seeds
    errors = max_relative_error(kind, 0.05, grid(3.0), range(8))
    assert errors["lyapunov"] < 0.02 and errors["slope"] < 0.02


def test_recovers_rate_with_more_noise_when_growth_is_large() -> None:
    # sigma 0.1 per replica: the noise of ln D(0) alone is ~0.045, so 2% needs growth of ~8 e-folds
    assert max_relative_error("hard", 0.1, grid(8.0), range(8))["lyapunov"] < 0.02


def test_recovers_rate_with_soft_saturation() -> None:
    # a softplus knee ~4 epochs wide biases short phases low (t_s = 10: -3.4%, t_s = 20: -0.5%): t_s >= 30
    errors = max_relative_error("soft", 0.05, grid(3.0, (30, 50, 75, 100, 150)), range(8))
    assert errors["lyapunov"] < 0.02 and errors["slope"] < 0.02


def test_noise_free_curve_is_exact() -> None:
    fit = fit_local_exponent(np.exp(shape(0.7, 30)))
    assert fit.lyapunov == pytest.approx(0.7, rel=1e-9)
    assert fit.slope == pytest.approx(0.7, rel=1e-9)
    assert (fit.start, fit.end, fit.tau, fit.r2) == (0, 30, pytest.approx(30.0), pytest.approx(1.0))


def test_growth_without_saturation_uses_whole_record() -> None:
    fit = fit_local_exponent(ball(0.05 * np.arange(T1), 0.05, 0))
    assert fit.saturation == -1 and fit.end == T1 - 1
    assert fit.lyapunov == pytest.approx(0.05, rel=0.02)


def mnist_like() -> np.ndarray:
    """docs/protocol.md's MNIST tanh, eta = 10 curve: ln D -8.28 -> +8.27 by epoch 24 after a 4-epoch slow dip."""
    t = np.arange(T1, dtype=np.float64)
    g = np.where(t <= 4, -0.35 * t, -1.4 + 0.8975 * (t - 4))
    g = np.where(t <= 24, g, g[24] + 0.004 * (t - 24))
    return -8.28 + g


def test_mnist_shape_window_stops_at_saturation() -> None:
    for seed in range(5):
        fit = fit_local_exponent(ball(mnist_like(), 0.02, seed, d0=1.0))
        assert fit.end in (23, 24) and fit.tau == pytest.approx(24.0, abs=0.5)
        assert fit.start in (3, 4, 5)
        assert fit.saturation <= 28
        assert fit.lyapunov == pytest.approx(0.69, abs=0.01)  # Eq. 3 at tau: (8.27 + 8.28) / 24
        assert fit.slope == pytest.approx(0.8975, abs=0.01)  # the exponential phase after the dip
        assert fit.r2 > 0.999


def test_mnist_shape_least_squares_over_0_24_matches_protocol() -> None:
    y = mnist_like()[:25]
    assert np.polyfit(np.arange(25), y, 1)[0] == pytest.approx(0.79, abs=0.01)


# --- curves that must never count as chaotic --------------------------------------------------------------

NON_EXPANDING = {
    "flat": lambda t: 0.0 * t,
    "slow shrink": lambda t: -0.01 * t,
    "shrink": lambda t: -0.1 * t,
    "shrink then flat": lambda t: -0.3 * np.minimum(t, 20),
    "dip then flat": lambda t: -0.5 * np.minimum(t, 5),
}


@pytest.mark.parametrize("name", sorted(NON_EXPANDING))
@pytest.mark.parametrize("sigma", [0.05, 0.1, 0.3])
def test_non_expanding_curves_never_count_in_rho(name: str, sigma: float) -> None:
    g = NON_EXPANDING[name](np.arange(T1, dtype=np.float64))
    distances = np.stack([ball(g, sigma, seed) for seed in range(50)])
    fits = fit_ball(distances)
    assert summarize(fits, np.full(50, -1), FitParams(n_boot=0)).rho == 0.0
    assert max(f.lyapunov for f in fits) < 0.05


# --- divergence, collapse and bad input -------------------------------------------------------------------

def test_diverged_balls_are_flagged_and_excluded() -> None:
    good = np.stack([ball(shape(0.5, 30), 0.05, s) for s in range(4)])
    bad_nan, bad_inf, bad_ref = good[0].copy(), good[1].copy(), good[2].copy()
    bad_nan[2, 50:] = np.nan
    bad_inf[0, 120] = np.inf
    bad_ref[:, 7:] = np.nan  # the reference diverged: every replica distance is NaN
    distances = np.concatenate([good, bad_nan[None], bad_inf[None], bad_ref[None]])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        fits = fit_ball(distances)
        summary = summarize(fits, np.array([5, 6, 7, 8, -1, -1, -1]), FitParams(n_boot=200))
    assert [f.diverged for f in fits] == [False] * 4 + [True] * 3
    assert [f.diverged_at for f in fits[4:]] == [50, 120, 7]
    assert all(np.isnan(f.lyapunov) for f in fits[4:])
    assert summary.n_diverged == 3 and summary.n_fitted == 4 and summary.n_ic == 7
    assert summary.lambda_mean == pytest.approx(np.mean([f.lyapunov for f in fits[:4]]))
    assert summary.rho == pytest.approx(400.0 / 7)


def test_all_diverged_gives_undefined_lambda_without_warnings() -> None:
    distances = np.full((3, 5, T1), np.nan)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        summary = summarize(fit_ball(distances), np.full(3, -1), FitParams(n_boot=50))
    assert np.isnan(summary.lambda_mean) and summary.lambda_ci is None and summary.rho == 0.0
    assert summary.to_json_dict()["lambda_mean"] is None


def test_diverged_epoch_withholds_the_fit_of_finite_curves() -> None:
    """The issue's case: after the loss overflows the networks freeze and d stays at a huge constant,
    a jump then a plateau that the window search would read as fast chaos; diverged_epoch says no."""
    frozen = ball(shape(0.5, 30), 0.05, 0)
    frozen[:, 1:] = 1.49e301  # finite: only diverged_epoch tells
    good = np.stack([ball(shape(0.5, 30), 0.05, s) for s in range(1, 3)])
    distances = np.concatenate([frozen[None], good])
    assert np.isfinite(fit_local_exponent(frozen).lyapunov)  # without the records: a (meaningless) estimate
    diverged_epoch = np.full((3, 6), -1, dtype=np.int32)
    diverged_epoch[0] = 1  # reference and replicas: loss non-finite from epoch 1
    diverged_epoch[2, 4] = -2  # NOT_COMPUTED is not a divergence
    fits = fit_ball(distances, FitParams(), diverged_epoch)
    assert [f.diverged for f in fits] == [True, False, False] and fits[0].diverged_at == 1
    assert all(np.isnan(getattr(fits[0], name)) for name in ("lyapunov", "slope", "eq3", "r2", "tau"))
    assert (fits[0].start, fits[0].end, fits[0].saturation) == (-1, -1, -1)
    assert fits[1:] == fit_ball(good)  # the others exactly as without the records
    summary = summarize(fits, np.full(3, -1), FitParams(n_boot=50))
    assert summary.n_diverged == 1 and summary.n_fitted == 2


def test_first_divergence_is_the_earliest_network_of_each_ball() -> None:
    records = np.array([[-1, -1, -1], [-1, 7, 3], [150, -1, -1], [-2, -2, -2], [0, -2, 9]], dtype=np.int32)
    assert first_divergence(records).tolist() == [-1, 3, 150, -1, 0]
    assert first_divergence(records[None]).shape == (1, 5)
    with pytest.raises(GdchaosError, match="diverged_epoch"):
        fit_ball(np.ones((2, 5, T1)), FitParams(), records)  # 5 balls recorded, 2 given
    with pytest.raises(GdchaosError, match="diverged_epoch"):
        first_divergence(np.zeros((2, 3)))  # floats are not epochs


def test_mean_distance_that_overflows_is_divergence_not_a_lambda() -> None:
    d = ball(shape(0.5, 30), 0.05, 0)
    d[:, 40:] = 1.5e308  # every d_j finite, their sum is not
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        fit = fit_local_exponent(d)
    assert fit.diverged and fit.diverged_at == 40 and np.isnan(fit.lyapunov) and fit.start == -1


def test_collapsed_ball_is_fitted_up_to_the_collapse() -> None:
    d = ball(-0.2 * np.arange(T1, dtype=np.float64), 0.05, 0)
    d[:, 60:] = 0.0  # replicas merged with the reference
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        fit = fit_local_exponent(d)
    assert not fit.diverged and fit.n_valid == 60 and fit.lyapunov < 0
    assert np.isnan(fit_local_exponent(np.zeros(T1)).lyapunov)


@pytest.mark.parametrize("bad", [np.ones((2, 3, 4, 5)), np.ones(1), -np.ones(T1), [["a"]]])
def test_bad_distances_are_user_errors(bad: object) -> None:
    with pytest.raises(GdchaosError, match="distances"):
        fit_local_exponent(bad)  # type: ignore[arg-type]


def test_fit_ball_matches_single_fits_and_checks_shape() -> None:
    distances = np.stack([ball(shape(1.0, 20), 0.05, s) for s in range(3)])
    assert fit_ball(distances) == [fit_local_exponent(b) for b in distances]
    with pytest.raises(GdchaosError, match=r"\(q, M, T\+1\)"):
        fit_ball(distances[0])
    table = fit_table(fit_ball(distances))
    assert table["lyapunov"].shape == (3,) and table["diverged"].dtype == bool


def test_slope_estimator_option() -> None:
    fit = fit_local_exponent(ball(mnist_like(), 0.02, 0, d0=1.0), FitParams(estimator="slope"))
    assert fit.method == "slope" and fit.lyapunov == fit.slope


def test_debug_output() -> None:
    fit, debug = fit_local_exponent(ball(mnist_like(), 0.02, 0, d0=1.0), debug=True)
    assert debug is not None and debug.log_d.shape == (T1,) and debug.slope_smooth.shape == (T1,)
    assert debug.saturation == fit.saturation
    w = debug.windows
    assert (w["start"][debug.chosen], w["end"][debug.chosen]) == (fit.start, fit.end)
    assert (w["end"] <= fit.saturation).all() and (w["end"] - w["start"] + 1 >= 5).all()
    text = debug.report(top=3)
    assert "saturation cut" in text and "*" in text
    assert fit_local_exponent(np.full((2, T1), np.nan), debug=True)[1] is None


def _libm_log(x: np.ndarray) -> np.ndarray:
    """ln x element by element with the C library's log, as the compiled kernel calls it (NumPy's
    own SIMD log, taken on AVX-512 CPUs, differs from it by an ulp for some inputs)."""
    return np.frompyfunc(math.log, 1, 1)(x).astype(np.float64)


def _numpy_windows(y: np.ndarray, first_end: int, last_end: int, stop: int, params: FitParams):
    """Independent reference for the window search: every window at once with NumPy, chosen by lexsort."""
    t = np.arange(stop + 1, dtype=np.float64)
    v = y[: stop + 1]
    cums = [np.concatenate(([0.0], np.cumsum(c))) for c in (np.ones_like(t), t, v, t * t, t * v, v * v)]

    def lines(lo, hi):
        n, st, sy, stt, sty, syy = (c[np.maximum(hi + 1, lo)] - c[lo] for c in cums)
        zeros = np.zeros(n.shape)
        mean_t = np.divide(st, n, out=zeros.copy(), where=n > 0)
        mean_y = np.divide(sy, n, out=zeros.copy(), where=n > 0)
        ctt, cty, cyy = np.maximum(stt - st * mean_t, 0.0), sty - st * mean_y, np.maximum(syy - sy * mean_y, 0.0)
        slope = np.divide(cty, ctt, out=zeros.copy(), where=ctt > 0)
        den = ctt * cyy
        r2 = np.minimum(np.divide(cty * cty, den, out=zeros.copy(), where=den > 0), 1.0)
        return slope, mean_y - slope * mean_t, np.maximum(cyy - slope * cty, 0.0), r2

    a, b = np.meshgrid(np.arange(last_end + 1), np.arange(first_end, last_end + 1), indexing="ij")
    keep = b - a + 1 >= params.min_len
    a, b = a[keep], b[keep]
    slope, intercept, sse, r2 = lines(a, b)
    before, _, sse_before, _ = lines(np.zeros_like(a), a - 1)
    after, after_intercept, sse_after, _ = lines(b + 1, np.full_like(b, stop))
    n = stop + 1.0
    total = sse + sse_before + sse_after + n * 1e-6**2
    score = n * _libm_log(total / n) + params.segment_penalty * math.log(n) * ((a > 0).astype(np.float64) + (b < stop))
    has_after = stop - b > 1
    steepest = (slope >= np.where(a > 1, before, -np.inf)) & (slope >= np.where(has_after, after, -np.inf))
    crossing = has_after & (slope > after)
    meet = np.divide(after_intercept - intercept, slope - after, out=b.astype(np.float64), where=crossing)
    windows = {"start": a, "end": b, "slope": slope, "intercept": intercept, "r2": r2, "score": score,
               "steepest": steepest, "tau": np.clip(meet, b, b + 1.0)}
    return windows, int(np.lexsort((b, b - a, -score, steepest))[-1])


@pytest.mark.parametrize("kind, sigma, seed", [("hard", 0.02, 0), ("drift", 0.2, 1), ("soft", 0.5, 2),
                                               ("hard", 0.0, 3)])
def test_window_search_equals_numpy_formulas(kind: str, sigma: float, seed: int) -> None:
    for rate, t_s in [(0.5, 30), (0.05, 150), (2.0, 10)]:
        fit, debug = fit_local_exponent(ball(shape(rate, t_s, kind), sigma, seed), debug=True)
        first_end, last_end = int(debug.windows["end"].min()), int(debug.windows["end"].max())
        windows, chosen = _numpy_windows(debug.log_d, first_end, last_end, debug.stop, FitParams())
        assert debug.chosen == chosen and (fit.start, fit.end) == (windows["start"][chosen], windows["end"][chosen])
        for name, column in windows.items():
            np.testing.assert_array_equal(debug.windows[name], column, err_msg=name)
            assert debug.windows[name].dtype == column.dtype
        assert fit.slope == windows["slope"][chosen] and fit.tau == windows["tau"][chosen]


# --- per learning rate summary ----------------------------------------------------------------------------

def chaotic_fits(q: int = 20) -> list:
    rates = np.linspace(0.4, 0.9, q)
    return [fit_local_exponent(ball(shape(r, 25), 0.05, s)) for s, r in enumerate(rates)]


def test_summary_statistics_and_tau_censoring() -> None:
    fits = chaotic_fits(5)
    reached = np.array([10, 20, -1, 30, -1])
    s = summarize(fits, reached, FitParams(n_boot=0), eta=7.5, budget=1000)
    lam = np.array([f.lyapunov for f in fits])
    assert s.lambda_mean == pytest.approx(lam.mean()) and s.lambda_std == pytest.approx(lam.std(ddof=0))
    assert s.rho == 100.0 and s.n_chaotic == 5
    assert (s.n_reached, s.tau_mean, s.tau_median) == (3, 20.0, 20.0)
    assert s.tau_std == pytest.approx(np.std([10, 20, 30]))
    assert s.lambda_ci is None and s.rho_ci is None


def test_nobody_reached_the_target() -> None:
    s = summarize(chaotic_fits(3), np.full(3, -1), FitParams(n_boot=0), budget=50)
    assert s.n_reached == 0 and np.isnan(s.tau_mean) and np.isnan(s.tau_median)
    out = s.to_json_dict()
    assert out["tau_mean"] is None and out["tau_std"] is None


def test_rho_thresholds_are_configurable() -> None:
    fits = chaotic_fits(10)
    assert summarize(fits, np.full(10, -1), FitParams(lambda_min=0.65, n_boot=0)).rho == pytest.approx(
        100.0 * np.mean([f.lyapunov > 0.65 for f in fits]))
    assert summarize(fits, np.full(10, -1), FitParams(r2_min=1.0, n_boot=0)).rho == 0.0


def test_bootstrap_is_deterministic_and_contains_the_mean() -> None:
    fits = chaotic_fits(20)
    reached = np.arange(20)
    a = summarize(fits, reached, FitParams(seed=3))
    b = summarize(fits, reached, FitParams(seed=3))
    c = summarize(fits, reached, FitParams(seed=4, n_boot=500))
    assert a.lambda_ci == b.lambda_ci and a.rho_ci == b.rho_ci
    assert a.lambda_ci != c.lambda_ci
    assert a.lambda_ci[0] < a.lambda_mean < a.lambda_ci[1]
    assert a.rho_ci == (100.0, 100.0)


def test_json_dict_is_strict_json() -> None:
    fits = chaotic_fits(4) + fit_ball(np.full((1, 5, T1), np.nan))
    out = summarize(fits, np.array([3, -1, 5, -1, -1]), eta=10.0, budget=100).to_json_dict()
    text = json.dumps(out, allow_nan=False)
    for key in ("eta", "lambda_mean", "lambda_std", "rho", "tau_mean", "tau_std", "n_reached", "n_ic"):
        assert key in json.loads(text)
    assert out["eta"] == 10.0 and out["n_ic"] == 5 and out["n_diverged"] == 1 and isinstance(out["lambda_ci"], list)


@pytest.mark.parametrize("reached, budget, match", [
    (np.array([1, 2]), None, "3 integers"),
    (np.array([1.0, 2.0, 3.0]), None, "integers"),
    (np.array([1, -2, 3]), None, r"\[-1, budget\]"),
    (np.array([1, 2, 300]), 100, r"\[-1, 100\]"),
    (np.array([1, 2, 3]), -5, "budget"),
])
def test_summary_input_errors(reached: np.ndarray, budget: int | None, match: str) -> None:
    with pytest.raises(GdchaosError, match=match):
        summarize(chaotic_fits(3), reached, budget=budget)


# --- parameters ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("min_start", 0), ("min_start", 2.5), ("sat_frac", 0.0), ("sat_frac", 1.0), ("sat_hold", 0),
    ("slope_halfwidth", 0), ("min_len", 2), ("segment_penalty", -1.0), ("estimator", "best"),
    ("r2_min", 1.5), ("lambda_min", float("nan")), ("n_boot", -1), ("n_boot", True), ("ci_level", 1.0),
    ("seed", -1),
])
def test_fit_params_errors_name_the_field(field: str, value: object) -> None:
    with pytest.raises(GdchaosError, match=field):
        FitParams(**{field: value})


def test_fit_params_from_mapping() -> None:
    assert FitParams.from_mapping({"min_len": 7}).min_len == 7
    assert FitParams.from_mapping({}).to_dict() == FitParams().to_dict()
    with pytest.raises(GdchaosError, match="analysis: unknown key 'r2'.*r2_min"):
        FitParams.from_mapping({"r2": 0.9})


# --- the authors' files -----------------------------------------------------------------------------------

def write_authors_file(path, weights: np.ndarray, **attrs) -> None:
    defaults = {"learning_rate": 10.0, "num_epochs": weights.shape[3] - 1, "n_init": weights.shape[1],
                "num_pert": weights.shape[2], "epsilon": 1e-8}
    defaults.update(attrs)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("weights", data=weights)
        for key, value in defaults.items():
            if value is not None:
                ds.attrs[key] = value


def test_authors_file_round_trip(tmp_path) -> None:
    weights = np.stack([np.stack([ball(shape(0.6, 25), 0.05, s) for s in range(3)])])  # (1, 3, 5, 202)
    path = tmp_path / "eta_10.h5"
    write_authors_file(path, weights.astype(np.float32))
    assert is_authors_file(path)
    eta, distances, attrs = read_authors_file(path)
    assert eta == 10.0 and distances.dtype == np.float64 and distances.shape == (1, 3, 5, T1)
    np.testing.assert_allclose(distances, weights, rtol=1e-6)
    assert attrs["num_pert"] == 5 and attrs["epsilon"] == pytest.approx(1e-8) and isinstance(attrs["n_init"], int)
    fits = fit_ball(distances[0])
    assert all(f.lyapunov == pytest.approx(0.6, rel=0.02) for f in fits)


def test_authors_attributes_on_file_root(tmp_path) -> None:
    path = tmp_path / "root.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("weights", data=np.ones((1, 2, 3, 4)))
        f.attrs["learning_rate"] = np.float32(0.5)
    assert is_authors_file(path) and read_authors_file(path)[0] == 0.5


@pytest.mark.parametrize("case, match", [
    ("text", "not a readable HDF5 file"),
    ("missing", "not a readable HDF5 file"),
    ("no_dataset", "no dataset 'weights'"),
    ("three_axes", "expected 4 axes"),
    ("no_eta", "learning_rate"),
    ("bad_eta", "learning_rate"),
    ("n_init", "n_init = 7 does not match"),
    ("strings", "non-numeric"),
])
def test_malformed_authors_files(tmp_path, case: str, match: str) -> None:
    path = tmp_path / f"{case}.h5"
    w = np.ones((1, 2, 3, 4))
    if case == "text":
        path.write_text("not hdf5\n")
    elif case == "no_dataset":
        with h5py.File(path, "w") as f:
            f.create_dataset("distances", data=w)
    elif case == "three_axes":
        with h5py.File(path, "w") as f:
            f.create_dataset("weights", data=w[0]).attrs["learning_rate"] = 1.0
    elif case == "no_eta":
        write_authors_file(path, w, learning_rate=None)
    elif case == "bad_eta":
        write_authors_file(path, w, learning_rate=-1.0)
    elif case == "n_init":
        write_authors_file(path, w, n_init=7)
    elif case == "strings":
        with h5py.File(path, "w") as f:
            f.create_dataset("weights", data=np.array(["a"] * 16, dtype="S1").reshape(1, 2, 2, 4))
            f.attrs["learning_rate"] = 1.0
    with pytest.raises(GdchaosError, match=match) as err:
        read_authors_file(path)
    assert "\n" not in str(err.value)
    if case in ("text", "missing", "no_dataset", "three_axes", "no_eta"):
        assert not is_authors_file(path)
