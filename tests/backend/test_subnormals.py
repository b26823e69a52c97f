"""The small-network kernels flush subnormals inside (x86) and leave the thread's floating-point
state as it was; the gradients of diverged networks are the float64 ones to within 1e-300."""
import numpy as np

from gdchaos.backend import small

SIZES = (4, 10, 3)


def _data(scale):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 4)), rng.integers(0, 3, 40)
    return rng.normal(size=(6, 83)) * scale, x, y


def _numpy_gradient(theta, x, y):
    """scale d(sum of cross-entropies)/dtheta, scale = 1/N, of a 4-10-3 tanh MLP (flat layout: W_1
    row-major (in, out), b_1, W_2, b_2), by hand with NumPy (which keeps subnormals)."""
    w1, b1 = theta[:40].reshape(4, 10), theta[40:50]
    w2, b2 = theta[50:80].reshape(10, 3), theta[80:83]
    a = np.tanh(x @ w1 + b1)
    z = a @ w2 + b2
    p = np.exp(z - z.max(axis=1, keepdims=True))
    delta = (p / p.sum(axis=1, keepdims=True) - np.eye(3)[y]) / len(y)
    below = (delta @ w2.T) * (1 - a * a)
    return np.concatenate([(x.T @ below).ravel(), below.sum(0), (a.T @ delta).ravel(), delta.sum(0)])


def test_the_thread_keeps_gradual_underflow_after_a_kernel():
    theta, x, y = _data(1.0)
    small.small_mlp(theta, x, y, SIZES, "tanh", 1 / 40, small.GRADIENT)
    assert (np.array([1e-310]) * 0.5)[0] == 5e-311


def test_diverged_networks_give_the_float64_gradient():
    theta, x, y = _data(300.0)  # logits of ~1e4: softmax outputs e^-708, subnormal products
    _, _, _, grad = small.small_mlp(theta, x, y, SIZES, "tanh", 1 / 40, small.GRADIENT)
    expected = np.stack([_numpy_gradient(t, x, y) for t in theta])
    assert np.isfinite(grad).all()
    # entries of 1e-9 are sums of terms of 1e-2 that cancel: round-off 1e-15 absolute
    np.testing.assert_allclose(grad, expected, rtol=1e-9, atol=1e-13)
    _, _, _, gentle = small.small_mlp(theta / 300.0, x, y, SIZES, "tanh", 1 / 40, small.GRADIENT)
    np.testing.assert_allclose(gentle, np.stack([_numpy_gradient(t, x, y) for t in theta / 300.0]), rtol=1e-9,
                               atol=1e-15)
