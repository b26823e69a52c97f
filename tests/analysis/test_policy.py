"""The one refit policy (gdchaos.analysis.analyse_sweep): what is analysed, read back or fitted now."""
import numpy as np
import pytest

from gdchaos.analysis import (FIT_FIELDS, SUMMARY_FIELDS, FitParams, analyse_arrays, analyse_sweep, late_median,
                              summary_arrays)

T1, Q, M = 60, 3, 4
VALUES, EPOCHS = ("lyapunov", "slope", "eq3", "r2", "tau"), ("start", "end", "saturation")  # no fit: NaN, -1


def curves(n_eta: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances (n_eta, q, M, T+1) growing at rate 0.2 (eta + 1) until they saturate, and reached epochs."""
    rng = np.random.default_rng(0)
    t = np.arange(T1)
    rates = 0.2 * (np.arange(n_eta) + 1.0)
    log_d = np.minimum(-10 + rates[:, None] * t, -10 + rates[:, None] * 25)  # saturates at epoch 25
    noise = rng.normal(0, 0.02, (n_eta, Q, M, T1))
    distances = np.exp(log_d[:, None, None, :] + noise)
    reached = np.tile(np.array([12, -1, 40]), (n_eta, 1))
    return distances, reached


class Loader:
    """Counts which learning rates the policy asks to read."""

    def __init__(self, distances, reached):
        self.distances, self.reached, self.asked = distances, reached, []

    def __call__(self, indices):
        self.asked.append(list(indices))
        return self.distances[indices], self.reached[indices]


def test_complete_etas_are_fitted_and_others_left_out():
    distances, reached = curves(4)
    complete = np.array([True, False, True, True])
    load = Loader(distances, reached)
    params = FitParams(n_boot=50)
    result = analyse_sweep(np.array([0.1, 1, 5, 10.0]), complete, Q, load, params, budget=100)
    assert load.asked == [[0, 2, 3]]
    expected, fits = analyse_arrays(np.array([0.1, 1, 5, 10.0]), distances, reached, params, budget=100,
                                    complete=complete)
    table = summary_arrays(expected)
    for name in SUMMARY_FIELDS:
        if name != "sharpness_late_median":
            np.testing.assert_array_equal(result.summary[name], table[name], err_msg=name)
    for name in FIT_FIELDS:
        np.testing.assert_array_equal(result.fits[name], fits[name], err_msg=name)
    assert np.isnan(result.summary["lambda_mean"][1]) and result.summaries[1] is None
    assert result.summaries[0].n_reached == 2 and result.summary["tau_mean"][0] == pytest.approx(26.0)
    np.testing.assert_array_equal(result.complete, complete)


def test_stored_analysis_is_read_back_and_only_the_rest_is_fitted():
    distances, reached = curves(3)
    complete = np.ones(3, dtype=bool)
    stored_summary = {name: np.full(3, np.nan) for name in SUMMARY_FIELDS}
    stored_fits = {name: np.full((3, Q), np.nan) for name in FIT_FIELDS}
    stored_summary["n_ic"][:2] = Q
    stored_summary["lambda_mean"][:2] = [123.0, 456.0]  # values no fit gives: they must come back as stored
    stored_fits["lyapunov"][:2] = 7.0
    load = Loader(distances, reached)
    result = analyse_sweep(np.array([1.0, 2.0, 3.0]), complete, Q, load, FitParams(n_boot=0), budget=100,
                           stored=(stored_summary, stored_fits))
    assert load.asked == [[2]]
    assert result.summary["lambda_mean"][:2].tolist() == [123.0, 456.0]
    assert np.all(result.fits["lyapunov"][:2] == 7.0)
    assert 0.5 < result.summary["lambda_mean"][2] < 0.7  # rate 0.6, fitted now
    assert result.summaries[:2] == (None, None) and result.summaries[2] is not None


def test_a_cache_keeps_fits_for_the_next_read():
    distances, reached = curves(2)
    cache = {}
    load = Loader(distances, reached)
    first = analyse_sweep(np.array([1.0, 2.0]), np.array([True, False]), Q, load, FitParams(n_boot=0), budget=100,
                          cache=cache)
    second = analyse_sweep(np.array([1.0, 2.0]), np.array([True, True]), Q, load, FitParams(n_boot=0), budget=100,
                           cache=cache)
    assert load.asked == [[0], [1]]  # learning rate 0 was not read again
    assert second.summary["lambda_mean"][0] == first.summary["lambda_mean"][0]
    assert set(cache) == {0, 1}


def test_sharpness_late_median_of_complete_etas():
    distances, reached = curves(2)
    sharpness = np.arange(2 * Q * 6, dtype=float).reshape(2, Q, 6)
    sharpness[0, 0, 5] = np.nan
    result = analyse_sweep(np.array([1.0, 2.0]), np.array([True, False]), Q, Loader(distances, reached),
                           FitParams(n_boot=0), budget=100, sharpness=sharpness)
    assert result.summary["sharpness_late_median"][0] == late_median(sharpness)[0]
    assert np.isnan(result.summary["sharpness_late_median"][1])


# --- divergence: counted from diverged_epoch, never fitted ---------------------------------------------------

def records(n_eta: int) -> np.ndarray:
    """diverged_epoch (n_eta, q, M+1): no network diverged."""
    return np.full((n_eta, Q, M + 1), -1, dtype=np.int32)


def test_a_ball_with_one_diverged_replica_is_not_fitted_and_counts_as_diverged():
    distances, reached = curves(2)
    diverged_epoch = records(2)
    diverged_epoch[1, 2, 3] = 17  # one replica of IC 2 at eta index 1; its distances stay finite
    params = FitParams(n_boot=100)
    result = analyse_sweep(np.array([1.0, 2.0]), np.ones(2, dtype=bool), Q, Loader(distances, reached), params,
                           budget=100, diverged_epoch=diverged_epoch)
    plain = analyse_sweep(np.array([1.0, 2.0]), np.ones(2, dtype=bool), Q, Loader(distances, reached), params,
                          budget=100)
    assert result.summary["n_diverged"].tolist() == [0, 1] and plain.summary["n_diverged"].tolist() == [0, 0]
    assert all(np.isnan(result.fits[name][1, 2]) for name in VALUES)
    assert all(result.fits[name][1, 2] == -1 for name in EPOCHS)
    for name in FIT_FIELDS:
        np.testing.assert_array_equal(result.fits[name][1, :2], plain.fits[name][1, :2], err_msg=name)
        np.testing.assert_array_equal(result.fits[name][0], plain.fits[name][0], err_msg=name)
    assert result.summaries[1].n_fitted == Q - 1 and result.summaries[1].n_diverged == 1
    assert result.summary["lambda_mean"][1] == np.mean(plain.fits["lyapunov"][1, :2])
    assert result.summary["rho"][1] <= 100.0 * (Q - 1) / Q
    for name in SUMMARY_FIELDS:  # the learning rate without divergence: bit for bit
        np.testing.assert_array_equal(result.summary[name][0], plain.summary[name][0], err_msg=name)


def test_a_reference_that_diverges_after_the_ball_phase_also_counts():
    distances, reached = curves(1)
    diverged_epoch = records(1)
    diverged_epoch[0, 0, 0] = 500  # the reference, trained on towards the target, diverged at epoch 500 > T
    result = analyse_sweep(np.array([1.0]), np.ones(1, dtype=bool), Q, Loader(distances, reached),
                           FitParams(n_boot=0), budget=1000, diverged_epoch=diverged_epoch)
    assert result.summary["n_diverged"][0] == 1 and np.isnan(result.fits["lyapunov"][0, 0])
    assert np.isfinite(result.fits["lyapunov"][0, 1:]).all()


def test_every_ball_diverged_gives_no_lambda_and_n_diverged_q():
    distances, reached = curves(1)
    diverged_epoch = np.ones((1, Q, M + 1), dtype=np.int32)
    result = analyse_sweep(np.array([1e307]), np.ones(1, dtype=bool), Q, Loader(distances, reached),
                           FitParams(n_boot=50), budget=100, diverged_epoch=diverged_epoch)
    assert result.summary["n_diverged"][0] == Q and result.summary["n_ic"][0] == Q
    assert np.isnan(result.summary["lambda_mean"][0]) and result.summary["rho"][0] == 0.0
    assert all(np.isnan(result.fits[name]).all() for name in VALUES)
    assert all((result.fits[name] == -1).all() for name in EPOCHS) and {*VALUES, *EPOCHS} == set(FIT_FIELDS)


def test_a_stored_analysis_that_undercounts_divergence_is_fitted_again():
    distances, reached = curves(2)
    diverged_epoch = records(2)
    diverged_epoch[1, :, 0] = 1  # every reference at eta index 1 diverged
    stored_summary = {name: np.full(2, np.nan) for name in SUMMARY_FIELDS}
    stored_fits = {name: np.full((2, Q), np.nan) for name in FIT_FIELDS}
    stored_summary["n_ic"][:] = Q
    stored_summary["n_diverged"][:] = 0  # what a gdchaos that did not read diverged_epoch stored
    stored_summary["lambda_mean"][:] = 77.1
    load = Loader(distances, reached)
    result = analyse_sweep(np.array([1.0, 2.0]), np.ones(2, dtype=bool), Q, load, FitParams(n_boot=0),
                           budget=100, stored=(stored_summary, stored_fits), diverged_epoch=diverged_epoch)
    assert load.asked == [[1]]  # index 0 agrees with the records: read back
    assert result.summary["lambda_mean"][0] == 77.1
    assert result.summary["n_diverged"][1] == Q and np.isnan(result.summary["lambda_mean"][1])
