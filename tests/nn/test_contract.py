"""The contract every network kind keeps (gdchaos.nn.Network), one test suite run over MLPs, through
their three evaluation paths, and CNNs, against independent ground truth: the flat layout and its
views, initialisation, data checks, loss and accuracy against a plain NumPy implementation (loops for
CNNs), the gradient against central differences, a batch against
networks alone, chunks of samples and thread counts against one pass, divergence, float32, and exact
Hessian-vector products against differences of gradients and dense Hessians."""
import warnings

import numpy as np
import pytest

from gdchaos.engine.train import gradient_step, train
from gdchaos.errors import GdchaosError
from gdchaos.nn import (
    CNN,
    MLP,
    hessian_operator,
    hessian_vector_product,
    top_eigenvalue,
)

KINDS = ("mlp-whole-network", "mlp-layered", "mlp-sparse-input", "cnn")
CONV = {"type": "conv", "channels": 3, "kernel": 3, "padding": 1}
MLP_SIZES = [(5, 7, 3), (5, 7, 6, 3), (5, 6, 4, 5, 3), (1, 2, 3), (2, 3, 2)]  # depths 1 to 3; 1-3 rows left over
# (input shape, layers): every layer type, pooling with dropped rows, blocks before the first conv,
# consecutive activations, a conv without activation, and no conv at all
CNN_ARCHITECTURES = [
    ((1, 6, 6), [CONV, {"type": "relu"}, {"type": "maxpool"},
                 {"type": "conv", "channels": 2, "kernel": 2}, {"type": "tanh"}]),
    ((2, 5, 5), [{"type": "conv", "channels": 3, "kernel": 2}, {"type": "sigmoid"},
                 {"type": "maxpool", "size": 2}, {"type": "conv", "channels": 2, "kernel": 2, "padding": 1},
                 {"type": "linear"}]),
    ((2, 5, 5), [{"type": "maxpool", "size": 2}, {"type": "tanh"}, CONV, {"type": "relu"},
                 {"type": "sigmoid"}, {"type": "maxpool", "size": 2}]),
    ((2, 6, 6), [{"type": "conv", "channels": 2, "kernel": 3}, CONV, {"type": "maxpool", "size": 3},
                 {"type": "tanh"}]),
    ((2, 5, 5), [{"type": "relu"}]),
]


@pytest.fixture(params=KINDS)
def kind(request, mlp_path):
    """A network kind; for MLPs also the evaluation path every evaluation takes (conftest.mlp_path)."""
    if request.param.startswith("mlp-"):
        mlp_path(request.param.removeprefix("mlp-"))
    return request.param


def networks(kind: str, **options) -> list:
    """Every architecture of the kind (MLPs with each activation), built with ``options``."""
    if kind == "cnn":
        return [CNN(shape, layers, n_classes=3, **options) for shape, layers in CNN_ARCHITECTURES]
    return [MLP(sizes, activation=activation, **options)
            for sizes in MLP_SIZES for activation in ("tanh", "sigmoid", "relu")]


def network(kind: str, **options):
    """One network of the kind with a smooth activation (tanh): finite differences cross no kink."""
    if kind == "cnn":
        return CNN((1, 6, 6), [CONV, {"type": "tanh"}, {"type": "maxpool"}, {"type": "conv", "channels": 2,
                                                                               "kernel": 2}], n_classes=3, **options)
    return MLP((5, 7, 6, 3), activation="tanh", **options)


def problem(model, n=13, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, model.n_features)), rng.integers(0, model.n_classes, n)


def params(model, n_networks, seed=1, std=0.5):
    """Random weights and nonzero biases (so that the biases' gradients are exercised)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, std, (n_networks, model.n_params))
    theta[:, ~model.weight_mask()] *= 0.6
    return theta.astype(model.dtype)


# ------------------------------------------------------------------------------ layout
def test_flat_layout_views_and_bounds(kind):
    for model in networks(kind):
        layout = model.layout()
        offsets = [t.offset for t in layout]
        assert offsets == list(np.cumsum([0] + [t.size for t in layout[:-1]]))
        assert model.n_params == layout[-1].offset + layout[-1].size
        np.testing.assert_array_equal(model.tensor_bounds(), offsets + [model.n_params])
        assert [t.name for t in layout] == [f"{kind}{i}" for i in range(1, len(layout) // 2 + 1) for kind in "Wb"]
        mask = model.weight_mask()
        assert all(mask[t.offset:t.offset + t.size].all() == t.name.startswith("W") for t in layout)
        theta = np.arange(2 * model.n_params, dtype=float).reshape(2, -1)
        tensors = model.unflatten(theta)
        assert [a.shape for a in tensors] == [(2, *t.shape) for t in layout]
        np.testing.assert_array_equal(model.flatten(tensors), theta)
        tensors[1][:] = -1.0  # views write through
        assert np.all(theta[:, layout[1].offset:layout[1].offset + layout[1].size] == -1.0)
        with pytest.raises(GdchaosError, match="theta"):
            model.unflatten(theta[:, :-1])


def test_initialisation_draws_weights_and_zero_biases(kind):
    model = network(kind, init_std=0.3)
    theta = model.init(np.random.default_rng(0), 400)
    mask = model.weight_mask()
    assert theta.shape == (400, model.n_params) and theta.dtype == np.float64
    assert np.all(theta[:, ~mask] == 0.0)
    weights = theta[:, mask]
    assert abs(weights.std() - 0.3) < 0.01 and abs(weights.mean()) < 0.01
    np.testing.assert_array_equal(model.init(np.random.default_rng(0), 400), theta)


@pytest.mark.parametrize("bad, message", [
    ("labels", "labels must lie in"), ("negative", "labels must lie in"), ("shape", "inputs must have shape"),
    ("nan", "NaN or inf"), ("float_labels", "must be integers"), ("label_shape", "labels must have shape"),
])
def test_bad_data_is_reported_before_any_kernel(kind, bad, message):
    model = network(kind)
    x, y = problem(model, n=4)
    model.check_data(x, y)
    if bad == "labels":
        y[1] = model.n_classes
    elif bad == "negative":
        y[1] = -1
    elif bad == "shape":
        x = x[:, :-1]
    elif bad == "nan":
        x[2, 0] = np.nan
    elif bad == "float_labels":
        y = y.astype(float)
    else:
        y = y[:-1]
    with pytest.raises(GdchaosError, match=message):
        model.check_data(x, y)


# ------------------------------------------------------- an independent NumPy implementation
ACTIVATE = {"tanh": np.tanh, "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)), "relu": lambda z: np.maximum(z, 0.0)}


def _mlp_logits(model, theta_row, x):
    """Logits of one MLP, layer by layer with NumPy."""
    tensors = [t[0] for t in model.unflatten(theta_row[None])]
    a = x
    for w, b in zip(tensors[0:-2:2], tensors[1:-2:2]):
        a = ACTIVATE[model.activation](a @ w + b)
    return a @ tensors[-2] + tensors[-1]


def _cnn_logits(model, theta_row, x):
    """Logits of one CNN by plain NumPy loops in NCHW layout."""
    tensors = model.unflatten(theta_row[None])
    tensors = [t[0] for t in tensors]
    a = x.reshape(-1, *model.input_shape)
    i = 0
    for layer in model.layers:
        if layer.type == "conv":
            weight, bias = tensors[i], tensors[i + 1]
            i += 2
            k, p = layer.kernel, layer.padding
            padded = np.pad(a, ((0, 0), (0, 0), (p, p), (p, p)))
            h, w = padded.shape[2] - k + 1, padded.shape[3] - k + 1
            out = np.zeros((a.shape[0], layer.channels, h, w)) + bias[None, :, None, None]
            for di in range(k):
                for dj in range(k):
                    window = padded[:, :, di:di + h, dj:dj + w]
                    out += np.einsum("nchw,oc->nohw", window, weight[:, :, di, dj])
            a = out
        elif layer.type == "relu":
            a = np.maximum(a, 0.0)
        elif layer.type == "tanh":
            a = np.tanh(a)
        elif layer.type == "sigmoid":
            a = 1.0 / (1.0 + np.exp(-a))
        else:
            s = layer.size
            n, c, h, w = a.shape
            a = a[:, :, :h // s * s, :w // s * s].reshape(n, c, h // s, s, w // s, s).max(axis=(3, 5))
    return a.reshape(len(a), -1) @ tensors[i] + tensors[i + 1]


def reference_loss_and_accuracy(model, theta_row, x, y):
    """Mean cross-entropy (log-sum-exp) + (l2/2)||W||^2 and accuracy of one network."""
    logits = (_cnn_logits if isinstance(model, CNN) else _mlp_logits)(model, theta_row, x)
    top = logits.max(axis=1, keepdims=True)
    log_p = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    weights = theta_row[model.weight_mask()]
    loss = -log_p[np.arange(len(y)), y].mean() + 0.5 * model.l2 * weights @ weights
    return loss, np.mean(logits.argmax(axis=1) == y)


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_loss_and_accuracy_match_an_independent_numpy_implementation(kind, l2):
    for model in networks(kind, l2=l2):
        x, y = problem(model, n=7)
        theta = params(model, 2)
        evaluation = model.evaluate(theta, x, y, grad=False)
        for r in range(2):
            loss, accuracy = reference_loss_and_accuracy(model, theta[r], x, y)
            assert evaluation.loss[r] == pytest.approx(loss, rel=1e-12), model
            assert evaluation.accuracy[r] == accuracy, model
        np.testing.assert_array_equal(model.accuracy(theta, x, y), evaluation.accuracy)


# --------------------------------------------------------------------------- gradient
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_gradient_matches_central_differences(kind, l2):
    h = 1e-6
    for model in networks(kind, l2=l2):
        x, y = problem(model)
        theta = params(model, 2)
        evaluation = model.evaluate(theta, x, y)
        np.testing.assert_allclose(model.evaluate(theta, x, y, grad=False).loss, evaluation.loss, rtol=1e-13)
        np.testing.assert_array_equal(model.accuracy(theta, x, y), evaluation.accuracy)
        for r in range(2):
            basis = np.eye(model.n_params) * h
            numeric = (model.evaluate(theta[r] + basis, x, y, grad=False).loss
                       - model.evaluate(theta[r] - basis, x, y, grad=False).loss) / (2 * h)
            error = np.max(np.abs(numeric - evaluation.grad[r])) / np.max(np.abs(numeric))
            assert error < 1e-6, (model, l2, r, error)


def test_batch_equals_separate_networks_with_own_learning_rates(kind):
    model = network(kind, l2=1e-3)
    x, y = problem(model, n=40)
    theta = model.init(np.random.default_rng(3), 4)
    eta = np.array([0.1, 1.0, 2.5, 7.0])
    batch = theta.copy()
    singles = [theta[r:r + 1].copy() for r in range(4)]
    for _ in range(4):
        evaluation = gradient_step(model, batch, eta, x, y)
        for r in range(4):
            single = gradient_step(model, singles[r], eta[r], x, y)
            assert single.loss[0] == pytest.approx(evaluation.loss[r], rel=1e-12)
    for r in range(4):
        np.testing.assert_allclose(batch[r], singles[r][0], rtol=1e-12, atol=1e-12)


def test_chunks_of_samples_do_not_change_results(kind):
    model = network(kind)
    x, y = problem(model, n=101)
    theta = params(model, 3)
    whole = model.evaluate(theta, x, y)
    budget = 20_000 if kind == "cnn" else 4_000
    assert model.chunk_size(3, memory_budget=budget) < 101
    split = model.evaluate(theta, x, y, memory_budget=budget)
    np.testing.assert_allclose(split.loss, whole.loss, rtol=1e-13)
    np.testing.assert_allclose(split.grad, whole.grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(split.accuracy, whole.accuracy)
    np.testing.assert_array_equal(model.accuracy(theta, x, y, memory_budget=budget), whole.accuracy)


def test_results_do_not_depend_on_the_number_of_threads(kind, numba_threads):
    model = network(kind)
    x, y = problem(model, n=60)
    theta = params(model, 40)
    with numba_threads(1):
        one = model.evaluate(theta, x, y, memory_budget=30_000)
    with numba_threads(2):
        two = model.evaluate(theta, x, y, memory_budget=30_000)
    np.testing.assert_array_equal(one.grad, two.grad)
    np.testing.assert_array_equal(one.loss, two.loss)


def test_divergence_gives_nan_without_errors_or_warnings(kind):
    for model in networks(kind, init_std=1.0):
        x, y = problem(model, n=30)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # also inside the worker threads
            records = list(train(model, model.init(np.random.default_rng(0), 2), np.array([0.1, 1e300]), x, y, 10,
                                 memory_budget=20_000))
        assert np.isfinite(records[-1].loss[0])
        # saturating activations keep the loss finite but enormous; relu overflows to inf/NaN
        assert not np.isfinite(records[-1].loss[1]) or records[-1].loss[1] > 1e250, model


def test_float32_follows_float64(kind):
    wide, narrow = network(kind), network(kind, dtype="float32")
    x, y = problem(wide, n=20)
    theta = params(wide, 2)
    expected, result = wide.evaluate(theta, x, y), narrow.evaluate(theta.astype(np.float32), x, y)
    assert narrow.init(np.random.default_rng(0), 1).dtype == np.float32 and result.grad.dtype == np.float32
    np.testing.assert_allclose(result.loss, expected.loss, rtol=1e-5)
    np.testing.assert_allclose(result.grad, expected.grad, atol=1e-5 * np.abs(expected.grad).max())


# ---------------------------------------------------------------- Hessian-vector products
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_hessian_vector_products_match_central_differences_of_the_gradient(kind, l2):
    h = 1e-5
    for model in networks(kind, l2=l2):
        x, y = problem(model)
        theta = params(model, 2)
        v = np.random.default_rng(7).normal(size=theta.shape)
        hv = hessian_vector_product(model, theta, v, x, y)
        numeric = (model.evaluate(theta + h * v, x, y).grad - model.evaluate(theta - h * v, x, y).grad) / (2 * h)
        for r in range(2):
            error = np.max(np.abs(hv[r] - numeric[r])) / np.max(np.abs(numeric[r]))
            assert error < 1e-6, (model, l2, r, error)


def test_dense_hessian_is_symmetric_and_its_top_eigenvalue_is_found(kind):
    model = network(kind, l2=0.01)
    x, y = problem(model, n=11)
    theta = params(model, 1)[0]
    n, h = theta.size, 1e-5
    exact = hessian_vector_product(model, np.repeat(theta[None], n, 0), np.eye(n), x, y).T
    steps = np.eye(n) * h
    numeric = ((model.evaluate(theta + steps, x, y).grad - model.evaluate(theta - steps, x, y).grad) / (2 * h)).T
    scale = np.abs(numeric).max()
    assert np.abs(exact - numeric).max() / scale < 1e-6
    assert np.abs(exact - exact.T).max() / scale < 1e-12
    result = top_eigenvalue(model, theta[None], x, y, tol=1e-10, max_iter=2000)
    assert result.converged[0]
    assert result.eigenvalue[0] == pytest.approx(np.linalg.eigvalsh(exact)[-1], rel=1e-6)


@pytest.mark.parametrize("budget", [1 << 20, 1])  # theta-only arrays kept, or recomputed one sample a chunk
def test_hessian_operator_batches_rows_and_chunks(kind, budget):
    model = network(kind, l2=1e-3)
    x, y = problem(model, n=30)
    theta = params(model, 4, std=0.4)
    v = np.random.default_rng(3).normal(size=theta.shape)
    batch = hessian_vector_product(model, theta, v, x, y)
    for r in range(4):
        single = hessian_vector_product(model, theta[r:r + 1], v[r:r + 1], x, y)[0]
        np.testing.assert_allclose(batch[r], single, rtol=1e-12, atol=1e-12 * np.abs(single).max())
    operator = hessian_operator(model, theta, x, y, memory_budget=budget)
    rows = np.array([3, 1])
    tolerance = dict(rtol=1e-12, atol=1e-13 * np.abs(batch).max())
    np.testing.assert_allclose(operator(v), batch, **tolerance)
    np.testing.assert_allclose(operator(v[rows], rows), batch[rows], **tolerance)
    with pytest.raises(GdchaosError, match="v:"):
        operator(v[:, :-1])
