"""The SIMD vector type (backend.vector): each lane computes what the scalar code computes, bit for
bit; lane sums in their fixed order; the Iris kernel's padding of N to whole vectors."""
import numpy as np
import pytest
from numba import njit

from gdchaos.backend import small, vecmath, vector
from gdchaos.backend.jit import kernel
from gdchaos.backend.vector import LANES


@njit(inline="always")
def _apply(v, which):
    """The function under test on a float or a vector: one source for both."""
    if which == 0:
        return vecmath.tanh(v)
    if which == 1:
        return vecmath.exp_nonpositive(-abs(v))
    if which == 2:
        return vecmath.sigmoid(v)
    return vector.fma(v, 2.0, 1.0) - v / 3.0 + vector.where_less(v, 0.5, -v, v * v)


@kernel()
def _on_vectors(z, out, which):
    for i in range(0, z.size, LANES):
        vector.store(out, i, _apply(vector.load(z, i), which))


@kernel()
def _on_floats(z, out, which):
    for i in range(z.size):
        out[i] = _apply(z[i], which)


@pytest.mark.parametrize("which", [0, 1, 2, 3], ids=["tanh", "exp", "sigmoid", "arithmetic"])
def test_a_lane_computes_the_scalar_bits(which):
    z = np.random.default_rng(1).normal(size=64 * LANES) * 5
    z[:LANES] = 10.0 ** np.random.default_rng(2).uniform(-320, 2, LANES)  # subnormal to large
    z[LANES:LANES + 6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 19.5]
    lanes, floats = np.empty_like(z), np.empty_like(z)
    _on_vectors(z, lanes, which)
    _on_floats(z, floats, which)
    np.testing.assert_array_equal(lanes.view(np.int64), floats.view(np.int64))


@kernel()
def _lane_sum(z):
    return vector.total(vector.load(z, 0)), vector.lane(vector.iota(), LANES - 1)


def test_lane_sum_is_pairwise_in_a_fixed_order():
    z = np.random.default_rng(3).normal(size=LANES) * 10.0 ** np.arange(LANES)
    expected = z.copy()
    while expected.size > 1:
        half = expected.size // 2
        expected = expected[:half] + expected[half:]
    total, last = _lane_sum(z)
    assert total == expected[0] and last == LANES - 1


@pytest.mark.parametrize("n", [1, LANES - 1, LANES + 1, 3 * LANES + 5])
def test_samples_past_n_do_not_count(n):
    """N not a multiple of LANES: the padded lanes add nothing to loss, hits or gradient."""
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=(n, 4)), rng.integers(0, 3, n)
    theta = rng.normal(size=(3, 83))
    loss, correct, _, grad = small.small_mlp(theta, x, y, (4, 10, 3), "tanh", 1.0, small.GRADIENT)
    # the same samples with one more copy of each: twice the sums
    loss2, correct2, _, grad2 = small.small_mlp(theta, np.concatenate([x, x]), np.concatenate([y, y]), (4, 10, 3),
                                                "tanh", 1.0, small.GRADIENT)
    np.testing.assert_allclose(loss2, 2 * loss, rtol=1e-13)
    np.testing.assert_array_equal(correct2, 2 * correct)
    np.testing.assert_allclose(grad2, 2 * grad, rtol=1e-12, atol=1e-14)


def test_the_loss_is_the_sum_of_per_sample_cross_entropies_and_propagates_nan():
    """One log per network (exponents and mantissas of the lanes' products of softmax denominators)."""
    rng = np.random.default_rng(7)
    n = 5 * LANES * 32 + 3  # past LOG_EVERY blocks, and a partial block
    x, y = rng.normal(size=(n, 4)), rng.integers(0, 3, n)
    theta = rng.normal(size=(4, 83)) * np.array([[0.5], [3.0], [30.0], [1.0]])
    theta[3, 7] = np.nan
    loss, _, _, _ = small.small_mlp(theta, x, y, (4, 10, 3), "tanh", 1.0, small.LOSS)
    for r in range(3):
        w1, b1, w2, b2 = theta[r, :40].reshape(4, 10), theta[r, 40:50], theta[r, 50:80].reshape(10, 3), theta[r, 80:]
        z = np.tanh(x @ w1 + b1) @ w2 + b2
        top = z.max(axis=1)
        expected = np.sum(np.log(np.exp(z - top[:, None]).sum(axis=1)) + top - z[np.arange(n), y])
        assert loss[r] == pytest.approx(expected, rel=1e-12)
    assert np.isnan(loss[3])
