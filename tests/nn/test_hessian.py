"""Exact Hessian-vector products and the sharpness against dense Hessians from finite differences
(MLPs first, then CNNs)."""
import warnings

import numpy as np
import pytest

from gdchaos.errors import GdchaosError
from gdchaos.nn import (
    CNN,
    MLP,
    CNNHessianOperator,
    HessianOperator,
    hessian_operator,
    hessian_vector_product,
    top_eigenvalue,
)

ARCHITECTURES = [(5, 7, 3), (5, 6, 4, 3)]


def _setup(sizes, activation, l2, n=13, seed=0):
    """A small problem with nonzero biases, so that every term of the R-pass is exercised."""
    model = MLP(sizes, activation=activation, l2=l2, init_std=0.7)
    rng = np.random.default_rng(seed)
    x = rng.random((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    theta = model.init(np.random.default_rng(seed + 1), 1)[0]
    theta[~model.weight_mask()] = rng.normal(0, 0.3, (~model.weight_mask()).sum())
    return model, theta, x, y


def _min_abs_preactivation(model, theta, x):
    """Smallest |z| over the hidden pre-activations: how far the inputs are from relu's kink."""
    params = model.unflatten(theta[None])
    a, smallest = x, np.inf
    for w, b in zip(params[0:-2:2], params[1:-2:2]):
        z = a @ w[0] + b[0]
        smallest = min(smallest, np.abs(z).min())
        a = np.maximum(z, 0)
    return smallest


def _dense_from_gradients(model, theta, x, y, h=1e-5):
    """H[:, k] = (g(theta + h e_k) - g(theta - h e_k)) / 2h, all columns as one batch of networks."""
    step = np.eye(theta.size) * h
    plus = model.evaluate(theta + step, x, y).grad
    minus = model.evaluate(theta - step, x, y).grad
    return ((plus - minus) / (2 * h)).T


def _dense_from_hvp(model, theta, x, y, **kwargs):
    """H[:, k] = H e_k, every unit vector as one network of the batch."""
    n = theta.size
    return hessian_vector_product(model, np.repeat(theta[None], n, 0), np.eye(n), x, y, **kwargs).T


def _assert_exact_hessian(model, theta, x, y):
    """The dense Hessian from H e_k against central differences of the gradient, its symmetry, and
    one direction's H v against the directional difference of the gradient."""
    numeric = _dense_from_gradients(model, theta, x, y)
    exact = _dense_from_hvp(model, theta, x, y)
    scale = np.abs(numeric).max()
    assert np.abs(exact - numeric).max() / scale < 1e-6
    assert np.abs(exact - exact.T).max() / scale < 1e-12
    v = np.random.default_rng(5).normal(size=theta.size)
    h = 1e-5
    grads = model.evaluate(np.stack([theta + h * v, theta - h * v]), x, y).grad
    directional = (grads[0] - grads[1]) / (2 * h)
    hv = hessian_vector_product(model, theta[None], v[None], x, y)[0]
    assert np.abs(hv - directional).max() / np.abs(directional).max() < 1e-6


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("sizes", ARCHITECTURES)
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_hessian_matches_finite_differences_of_gradient(activation, sizes, l2):
    model, theta, x, y = _setup(sizes, activation, l2)
    if activation == "relu":
        assert _min_abs_preactivation(model, theta, x) > 1e-3  # premise: h = 1e-5 never crosses a kink
    _assert_exact_hessian(model, theta, x, y)


@pytest.mark.parametrize("whole_network", [False, True])
def test_power_iteration_matches_eigvalsh(whole_network):
    model, theta, x, y = _setup((5, 7, 3), "sigmoid", 0.01)
    assert model.whole_network(x.shape[0])  # premise: the whole-network kernel applies
    spectrum = np.linalg.eigvalsh(_dense_from_hvp(model, theta, x, y))
    assert spectrum[-1] > -spectrum[0]
    result = top_eigenvalue(model, theta[None], x, y, tol=1e-10, max_iter=1000, whole_network=whole_network)
    assert result.converged[0]
    assert result.eigenvalue[0] == pytest.approx(spectrum[-1], rel=1e-6)
    assert np.linalg.norm(result.vector[0]) == pytest.approx(1.0)


def test_largest_algebraic_eigenvalue_when_a_negative_one_dominates():
    model = MLP((4, 5, 3), activation="tanh", init_std=2.0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    theta = model.init(np.random.default_rng(100), 1)[0]
    spectrum = np.linalg.eigvalsh(_dense_from_hvp(model, theta, x, y))
    assert -spectrum[0] > 2 * spectrum[-1] > 0  # premise: the dominant eigenvalue is negative
    result = top_eigenvalue(model, theta[None], x, y, tol=1e-10, max_iter=2000)
    assert result.converged[0]
    assert result.eigenvalue[0] == pytest.approx(spectrum[-1], rel=1e-6)


@pytest.mark.parametrize("whole_network", [False, True])
def test_batched_networks_each_get_their_own_eigenvalue(whole_network):
    model = MLP((4, 5, 3), activation="tanh", init_std=2.0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    theta = model.init(np.random.default_rng(100), 3)
    theta[1] *= 0.2
    theta[2, 0] = np.nan
    result = top_eigenvalue(model, theta, x, y, tol=1e-10, max_iter=2000, whole_network=whole_network)
    for r in range(2):
        expected = np.linalg.eigvalsh(_dense_from_hvp(model, theta[r], x, y))[-1]
        assert result.eigenvalue[r] == pytest.approx(expected, rel=1e-6)
        assert result.converged[r]
    assert np.isnan(result.eigenvalue[2]) and not result.converged[2] and result.iterations[2] == 0


def test_warm_start_needs_fewer_iterations():
    model, theta, x, y = _setup((5, 6, 4, 3), "tanh", 0.0, n=40)
    cold = top_eigenvalue(model, theta[None], x, y, seed=3)
    moved = theta + 1e-3 * np.random.default_rng(4).normal(size=theta.shape)
    fresh = top_eigenvalue(model, moved[None], x, y, seed=3)
    warm = top_eigenvalue(model, moved[None], x, y, v0=cold.vector)
    assert warm.converged[0] and fresh.converged[0]
    assert warm.iterations[0] < fresh.iterations[0]
    assert warm.eigenvalue[0] == pytest.approx(fresh.eigenvalue[0], rel=1e-4)


def test_subset_is_deterministic_and_changes_with_seed():
    model, theta, x, y = _setup((5, 7, 3), "tanh", 0.0, n=50)
    first = top_eigenvalue(model, theta[None], x, y, subset=20, seed=1, tol=1e-10, max_iter=1000)
    again = top_eigenvalue(model, theta[None], x, y, subset=20, seed=1, tol=1e-10, max_iter=1000)
    other = top_eigenvalue(model, theta[None], x, y, subset=20, seed=2, tol=1e-10, max_iter=1000)
    assert first.eigenvalue[0] == again.eigenvalue[0]
    assert first.eigenvalue[0] != pytest.approx(other.eigenvalue[0], rel=1e-6)
    rows = np.sort(np.random.default_rng(np.random.SeedSequence(1).spawn(2)[0]).choice(50, 20, replace=False))
    spectrum = np.linalg.eigvalsh(_dense_from_hvp(model, theta, x[rows], y[rows]))
    assert first.eigenvalue[0] == pytest.approx(spectrum[-1], rel=1e-6)


def test_diverged_networks_give_nan_without_warnings():
    model, theta, x, y = _setup((5, 7, 3), "tanh", 0.0)
    thetas = np.stack([theta, np.full_like(theta, np.inf), theta * 1e300])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = top_eigenvalue(model, thetas, x, y)
    assert np.isfinite(result.eigenvalue[0]) and result.converged[0]
    assert np.isnan(result.eigenvalue[1]) and not result.converged[1]
    assert not result.converged[2] or np.isfinite(result.eigenvalue[2])
    assert np.all(np.isfinite(result.vector))


@pytest.mark.parametrize("kwargs, name", [
    ({"tol": 0.0}, "tol"), ({"max_iter": 0}, "max_iter"), ({"subset": 0}, "subset"),
    ({"subset": 14}, "subset"), ({"v0": np.zeros((1, 64))}, "v0"), ({"v0": np.ones((2, 64))}, "v0"),
])
def test_bad_arguments_name_the_argument(kwargs, name):
    model, theta, x, y = _setup((5, 6, 4), "tanh", 0.0)
    assert model.n_params == 64
    with pytest.raises(GdchaosError, match=name):
        top_eigenvalue(model, theta[None], x, y, **kwargs)


def test_hvp_rejects_mismatched_shapes():
    model, theta, x, y = _setup((5, 7, 3), "tanh", 0.0)
    with pytest.raises(GdchaosError, match="v:"):
        hessian_vector_product(model, theta[None], theta[None, :-1], x, y)


# ------------------------------------------------------------------------------------------ CNN
def _tiny_cnn(activation, l2, n=11, seed=1):
    """1x6x6 images, conv 1->2 (3x3, pad 1) + activation + maxpool 2, linear 18->3 (77 parameters),
    nonzero biases; for relu the premise of finite differences is checked by the caller."""
    model = CNN(input_shape=(1, 6, 6), layers=[
        {"type": "conv", "channels": 2, "kernel": 3, "padding": 1}, {"type": activation},
        {"type": "maxpool", "size": 2}], n_classes=3, l2=l2, init_std=0.6)
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, model.n_features)), rng.integers(0, 3, n)
    theta = model.init(np.random.default_rng(seed + 1), 1)[0]
    theta[~model.weight_mask()] = rng.normal(0, 0.3, (~model.weight_mask()).sum())
    return model, theta, x, y


def _conv_margins(model, theta, x):
    """Smallest |z| of the conv's pre-activations (relu's kink) and smallest gap between the two
    largest activated values of a pooling window whose maximum is not 0 (a switch of the maximum):
    finite differences with step h are exact up to O(h^2) only if both stay far above h."""
    weight, bias = (t[0] for t in model.unflatten(theta[None])[:2])
    images = np.pad(x.reshape(-1, 6, 6), ((0, 0), (1, 1), (1, 1)))
    z = np.zeros((len(x), 2, 6, 6)) + bias[None, :, None, None]
    for i in range(3):
        for j in range(3):
            z += images[:, None, i:i + 6, j:j + 6] * weight[None, :, 0, i, j, None, None]
    a = {"relu": np.maximum(z, 0), "tanh": np.tanh(z)}[model.activation]
    windows = np.sort(a.reshape(len(x), 2, 3, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4), axis=1)
    live = windows[:, -1] != 0
    return np.abs(z).min(), (windows[live, -1] - windows[live, -2]).min()


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_cnn_hessian_matches_finite_differences_of_gradient(activation, l2):
    model, theta, x, y = _tiny_cnn(activation, l2)
    kink, gap = _conv_margins(model, theta, x)
    assert gap > 1e-3 and (activation != "relu" or kink > 1e-3)  # premise: h = 1e-5 switches nothing
    _assert_exact_hessian(model, theta, x, y)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_cnn_power_iteration_matches_eigvalsh(activation):
    model, theta, x, y = _tiny_cnn(activation, 0.01)
    spectrum = np.linalg.eigvalsh(_dense_from_hvp(model, theta, x, y))
    result = top_eigenvalue(model, theta[None], x, y, tol=1e-10, max_iter=2000)
    assert result.converged[0]
    assert result.eigenvalue[0] == pytest.approx(spectrum[-1], rel=1e-6)


def test_hessian_operator_dispatches_on_the_model_type():
    model, theta, x, y = _tiny_cnn("relu", 0.0)
    assert isinstance(hessian_operator(model, theta[None], x, y), CNNHessianOperator)
    mlp, theta, x, y = _setup((5, 7, 3), "tanh", 0.0)
    assert isinstance(hessian_operator(mlp, theta[None], x, y), HessianOperator)
    with pytest.raises(GdchaosError, match="no Hessian-vector product for str"):
        hessian_operator("model", theta[None], x, y)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_whole_network_kernel_gives_the_layered_products(activation, sizes, mlp_path):
    """backend.small_hvp (each network whole on a thread) against the layer-by-layer R-pass."""
    model, theta, x, y = _setup(sizes, activation, 0.05)
    thetas = np.stack([theta, 0.8 * theta, theta + 0.2])
    v = np.random.default_rng(3).normal(size=thetas.shape)
    mlp_path("whole-network")
    assert model.whole_network(x.shape[0])
    whole = HessianOperator(model, thetas, x, y, whole_network=True)(v)
    layered = hessian_vector_product(model, thetas, v, x, y)  # the default: layer by layer
    assert np.abs(whole - layered).max() <= 1e-12 * np.abs(layered).max()


@pytest.mark.parametrize("sizes", ARCHITECTURES)
@pytest.mark.parametrize("chunked", [False, True])
def test_an_operator_that_reuses_a_spent_ones_arrays_gives_the_same_bits(sizes, chunked, each_mlp_path):
    """``reuse=`` (the tangent's operator of each epoch takes over the previous one's arrays): its
    products equal those of a fresh operator bit for bit, at a new point and for another number of
    networks, in one chunk of samples or several; the spent operator still answers (it recomputes)."""
    model, theta, x, y = _setup(sizes, "tanh", 0.01, n=150)
    x[x < 0.5] = 0.0  # half zeros: the sparse path keeps them out
    rng = np.random.default_rng(5)
    first = np.stack([theta, 0.9 * theta])
    second = np.stack([theta + 0.1, 1.1 * theta, theta - 0.05])
    kept = 8 * 3 * len(x) * (3 * sum(sizes[1:-1]) + 2 * sizes[-1])  # what 3 networks keep
    budget = kept + 1 if chunked else 1 << 30  # chunked: just enough to keep, chunks of few samples
    v1 = rng.normal(size=first.shape)
    spent = HessianOperator(model, first, x, y, memory_budget=budget)
    before = spent(v1)
    operator = spent
    for thetas in (second, first, second):
        v = rng.normal(size=thetas.shape)
        operator = HessianOperator(model, thetas, x, y, memory_budget=budget, reuse=operator)
        assert np.array_equal(operator(v), HessianOperator(model, thetas, x, y, memory_budget=budget)(v))
    assert np.array_equal(spent(v1), before)  # spent: recomputed, same bits
