"""Tangent curves to numbers: finite-time exponents, windows, rho_tangent and its interval."""
import numpy as np
import pytest

from gdchaos.analysis import FitParams, finite_time_exponents, tangent_statistics, window_exponents


def _lines(slopes, epochs=50, start=-18.0):
    return start + np.outer(slopes, np.arange(epochs + 1, dtype=np.float64))


def test_finite_time_exponent_of_a_straight_line_is_its_slope_and_nan_after_divergence():
    curves = _lines([0.3, -0.1, 0.0])
    curves[2, 20:] = np.nan  # diverged at epoch 20
    np.testing.assert_allclose(finite_time_exponents(curves)[:2], [0.3, -0.1], rtol=1e-12)
    assert np.isnan(finite_time_exponents(curves)[2])


def test_window_exponent_uses_the_ball_fit_window():
    curves = _lines([0.5, 0.5, 0.5])
    curves[:, 30:] = curves[:, 30:30 + 1]  # flat after 30: the window [5, 25] still sees 0.5
    found = window_exponents(curves, np.array([5.0, np.nan, 10.0]), np.array([25.0, 20.0, 10.0]))
    assert found[0] == pytest.approx(0.5, rel=1e-12)
    assert np.isnan(found[1]) and np.isnan(found[2])  # no window, an empty window
    assert finite_time_exponents(curves)[0] == pytest.approx(0.5 * 30 / 50)


def test_statistics_count_chaotic_ics_and_bracket_the_mean():
    rng = np.random.default_rng(0)
    slopes = np.concatenate([rng.normal(0.3, 0.05, 30), rng.normal(-0.2, 0.05, 10)])
    curves = _lines(slopes)
    curves[-1, 40:] = np.nan  # one diverged IC: not chaotic, left out of the mean
    params = FitParams(lambda_min=0.05, n_boot=400)
    summary, rows = tangent_statistics(curves, np.full(40, 10.0), np.full(40, 30.0), params)
    lam = rows["lambda_tangent"]
    assert np.isnan(lam[-1]) and np.isfinite(lam[:-1]).all()
    assert summary["rho_tangent"] == pytest.approx(100 * 30 / 40)
    assert summary["lambda_tangent_mean"] == pytest.approx(slopes[:-1].mean(), rel=1e-12)
    assert summary["lambda_tangent_std"] == pytest.approx(slopes[:-1].std(), rel=1e-12)
    assert summary["lambda_tangent_ci_low"] < summary["lambda_tangent_mean"] < summary["lambda_tangent_ci_high"]
    assert summary["rho_tangent_ci_low"] < summary["rho_tangent"] < summary["rho_tangent_ci_high"]
    np.testing.assert_allclose(rows["lambda_tangent_window"][:-1], slopes[:-1], rtol=1e-12)
    again, _ = tangent_statistics(curves, np.full(40, 10.0), np.full(40, 30.0), params)
    assert again == summary  # seeded bootstrap
