"""Branch-free exp/tanh/sigmoid (backend.vecmath) against NumPy's libm-based functions."""
import numpy as np
import pytest
from numba import njit

from gdchaos.backend import vecmath


@njit
def _apply(x, which):
    out = np.empty_like(x)
    for i in range(x.size):
        if which == 0:
            out[i] = vecmath.exp_nonpositive(x[i])
        elif which == 1:
            out[i] = vecmath.tanh(x[i])
        elif which == 2:
            out[i] = vecmath.sigmoid(x[i])
        else:
            out[i] = vecmath.expm1_nonpositive(x[i])
    return out


def _ulps(got, want):
    scale = np.spacing(np.maximum(np.abs(want), np.finfo(float).tiny))
    return np.max(np.abs(got - want) / scale)


def _arguments(seed=0):
    rng = np.random.default_rng(seed)
    magnitudes = 10.0 ** rng.uniform(-300, 1.5, 200_000)
    return np.concatenate([rng.normal(0, 3, 200_000), rng.normal(0, 0.2, 100_000),
                           rng.uniform(-30, 30, 100_000), magnitudes, -magnitudes,
                           [0.0, 0.35, -0.35, np.nextafter(0.35, 0), 19.0, 20.0, 21.0]])


def test_exp_of_nonpositive_arguments_within_one_ulp():
    x = -np.abs(_arguments()) * 20
    x = x[x >= -708]
    assert _ulps(_apply(x, 0), np.exp(x)) <= 1.0


def test_expm1_of_nonpositive_arguments_within_two_ulp():
    """Also near 0, where exp(x) - 1 would lose every digit: what tanh is built on."""
    x = -np.abs(_arguments())
    x = x[x >= -708]
    assert _ulps(_apply(x, 3), np.expm1(x)) <= 2.0


def test_tanh_within_three_ulp_everywhere():
    x = _arguments()
    assert _ulps(_apply(x, 1), np.tanh(x)) <= 3.0


def test_sigmoid_relative_error():
    x = _arguments()
    e = np.exp(-np.abs(x))  # libm
    want = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    ok = np.abs(x) < 700
    assert np.max(np.abs(_apply(x, 2)[ok] - want[ok]) / want[ok]) < 1e-14


@pytest.mark.parametrize("which", [0, 1, 2, 3])
def test_nan_propagates(which):
    assert np.isnan(_apply(np.array([np.nan]), which)[0])


def test_limits():
    np.testing.assert_array_equal(_apply(np.array([np.inf, -np.inf, 800.0, -800.0]), 1),
                                  [1.0, -1.0, 1.0, -1.0])
    np.testing.assert_array_equal(_apply(np.array([np.inf, 0.0]), 2), [1.0, 0.5])
    assert 0 <= _apply(np.array([-np.inf]), 2)[0] < 1e-307  # floor of exp_nonpositive
    assert _apply(np.array([0.0]), 0)[0] == 1.0


def test_tanh_keeps_the_sign_of_zero():
    zeros = _apply(np.array([0.0, -0.0]), 1)
    np.testing.assert_array_equal(zeros, [0.0, 0.0])
    np.testing.assert_array_equal(np.signbit(zeros), [False, True])
