"""The batched MLP engine against independent ground truth (finite differences, single networks)."""
import warnings

import numpy as np
import pytest

import gdchaos.backend.sparse
import gdchaos.nn.mlp
from gdchaos.errors import GdchaosError
from gdchaos.nn import MLP
from gdchaos.engine.train import gradient_step, train, train_balls, train_to_target

ARCHITECTURES = [(5, 7, 3), (5, 7, 6, 3), (5, 6, 4, 5, 3)]  # depths 1 to 3


@pytest.fixture(autouse=True, params=["whole-network", "layered", "sparse-input"])
def kernel_path(request, monkeypatch):
    """Run every test through the three evaluation paths: the whole-network kernel for small
    networks (backend.small_mlp), the layer-by-layer path for large ones, and the latter with
    the first layer read through the sparse form of the input (backend.sparse)."""
    if request.param == "whole-network":
        monkeypatch.setattr(gdchaos.nn.mlp, "SMALL_NETWORK_BYTES", 1 << 40)
    else:
        monkeypatch.setattr(gdchaos.nn.mlp, "SMALL_NETWORK_BYTES", 0)
    sparse = request.param == "sparse-input"
    monkeypatch.setattr(gdchaos.backend.sparse, "MIN_FEATURES", 1 if sparse else 1 << 40)
    monkeypatch.setattr(gdchaos.backend.sparse, "MAX_DENSITY", 1.0)
    return request.param


def _problem(sizes, n=13, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    return x, y


def _finite_difference_gradient(model, theta_row, x, y, h=1e-6):
    """Central differences of the loss of one network, one coordinate at a time."""
    basis = np.eye(theta_row.size) * h
    plus = model.evaluate(theta_row + basis, x, y, grad=False).loss
    minus = model.evaluate(theta_row - basis, x, y, grad=False).loss
    return (plus - minus) / (2 * h)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("sizes", ARCHITECTURES)
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_gradient_matches_central_differences(activation, sizes, l2):
    model = MLP(sizes, activation=activation, l2=l2, init_std=0.7)
    x, y = _problem(sizes)
    theta = model.init(np.random.default_rng(1), 3)
    theta[:, ~model.weight_mask()] = np.random.default_rng(2).normal(0, 0.3, (3, (~model.weight_mask()).sum()))
    grad = model.evaluate(theta, x, y).grad
    for r in range(3):
        numeric = _finite_difference_gradient(model, theta[r], x, y)
        error = np.max(np.abs(numeric - grad[r])) / np.max(np.abs(numeric))
        assert error < 1e-6, (activation, sizes, l2, r, error)


def test_loss_is_mean_cross_entropy_plus_l2():
    model = MLP((4, 5, 3), activation="sigmoid", l2=0.3)
    x, y = _problem(model.sizes)
    theta = model.init(np.random.default_rng(0), 2)
    w1, b1, w2, b2 = model.unflatten(theta)
    for r in range(2):
        hidden = 1 / (1 + np.exp(-(x @ w1[r] + b1[r])))
        logits = hidden @ w2[r] + b2[r]
        log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        expected = -log_p[np.arange(len(y)), y].mean() + 0.15 * ((w1[r] ** 2).sum() + (w2[r] ** 2).sum())
        evaluation = model.evaluate(theta, x, y, grad=False)
        assert evaluation.loss[r] == pytest.approx(expected, rel=1e-13)
        assert evaluation.accuracy[r] == np.mean(logits.argmax(1) == y)


def test_softmax_is_stable_for_huge_logits():
    model = MLP((3, 4, 3), activation="relu", init_std=1e3)
    x, y = _problem(model.sizes)
    evaluation = model.evaluate(model.init(np.random.default_rng(0), 2), x * 1e3, y)
    assert np.all(np.isfinite(evaluation.loss)) and np.all(np.isfinite(evaluation.grad))


@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_batch_equals_separate_networks_with_own_learning_rates(sizes):
    model = MLP(sizes, activation="tanh", l2=1e-3)
    x, y = _problem(sizes, n=40)
    theta = model.init(np.random.default_rng(3), 4)
    eta = np.array([0.1, 1.0, 2.5, 7.0])
    batch = theta.copy()
    singles = [theta[r:r + 1].copy() for r in range(4)]
    for _ in range(5):
        evaluation = gradient_step(model, batch, eta, x, y)
        for r in range(4):
            single = gradient_step(model, singles[r], eta[r], x, y)
            assert single.loss[0] == pytest.approx(evaluation.loss[r], rel=1e-12)
    for r in range(4):
        np.testing.assert_allclose(batch[r], singles[r][0], rtol=1e-12, atol=1e-12)


def test_whole_network_kernel_is_bit_identical_across_batches_and_threads(kernel_path, numba_threads):
    """Each network runs through the same code whatever batch it is in and whichever thread takes it."""
    if kernel_path != "whole-network":
        pytest.skip("property of the whole-network kernel")
    model = MLP((5, 7, 6, 3), activation="tanh")
    x, y = _problem(model.sizes, n=37)
    theta = model.init(np.random.default_rng(4), 50)
    batch = model.evaluate(theta, x, y)
    alone = model.evaluate(theta[17:18], x, y)
    np.testing.assert_array_equal(alone.grad[0], batch.grad[17])
    np.testing.assert_array_equal(alone.loss[0], batch.loss[17])
    with numba_threads(1):
        serial = model.evaluate(theta, x, y)
    np.testing.assert_array_equal(serial.grad, batch.grad)
    np.testing.assert_array_equal(serial.loss, batch.loss)


def test_memory_budget_splits_samples_without_changing_results():
    model = MLP((6, 8, 5, 4))
    x, y = _problem(model.sizes, n=101)
    theta = model.init(np.random.default_rng(0), 3)
    whole = model.evaluate(theta, x, y)
    assert model.chunk_size(3, memory_budget=4000) < 101
    split = model.evaluate(theta, x, y, memory_budget=4000)
    np.testing.assert_allclose(split.loss, whole.loss, rtol=1e-13)
    np.testing.assert_allclose(split.grad, whole.grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(split.accuracy, whole.accuracy)
    np.testing.assert_array_equal(model.accuracy(theta, x, y, memory_budget=4000), whole.accuracy)


def test_flat_layout_roundtrip_and_order():
    model = MLP((4, 3, 2))
    assert [(t.name, t.shape, t.offset) for t in model.layout()] == [
        ("W1", (4, 3), 0), ("b1", (3,), 12), ("W2", (3, 2), 15), ("b2", (2,), 21)]
    assert model.n_params == 23
    theta = np.arange(2 * 23, dtype=float).reshape(2, 23)
    tensors = model.unflatten(theta)
    assert tensors[0][1, 0, 2] == 23 + 2 and tensors[3][0, 1] == 22
    np.testing.assert_array_equal(model.flatten(tensors), theta)
    tensors[1][:] = -1.0  # views write through
    assert np.all(theta[:, 12:15] == -1.0)


def test_paper_network_size_and_initialisation():
    model = MLP((784, 64, 10))
    assert model.n_params == 50_890
    theta = model.init(np.random.default_rng(0), 2)
    weights = theta[:, model.weight_mask()]
    assert np.all(theta[:, ~model.weight_mask()] == 0)
    assert abs(weights.std() - 1.0) < 0.01 and abs(weights.mean()) < 0.01
    assert MLP((784, 32, 32, 10)).n_params == 26_506


def test_train_records_epochs_distances_and_test_accuracy():
    model = MLP((5, 7, 3))
    x, y = _problem(model.sizes, n=30)
    theta = np.repeat(model.init(np.random.default_rng(0), 1), 3, axis=0)
    theta[1:] += 1e-3
    start = theta.copy()
    records = list(train(model, theta, 0.5, x, y, 4, x_test=x, y_test=y, test_networks=np.array([0]),
                         pairs=[[0, 1], [0, 2]], keep_params=True))
    assert [r.epoch for r in records] == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(records[0].theta, start)
    assert records[0].distances == pytest.approx([1e-3 * model.n_params] * 2)
    assert records[2].test_accuracy.shape == (1,)
    np.testing.assert_array_equal(records[-1].theta, theta)
    assert records[3].loss[0] == model.evaluate(records[3].theta, x, y, grad=False).loss[0]


def _step_to_target(model, row, eta, x, y, x_test, y_test, target, epochs):
    """Reference for train_to_target: one network, one evaluate / update / accuracy per epoch."""
    for step in range(1, epochs + 1):
        evaluation = gradient_step(model, row, eta, x, y)
        if not np.isfinite(evaluation.loss[0]):
            return step, False, True
        if model.accuracy(row, x_test, y_test)[0] >= target:
            return step, True, False
    return epochs, False, False


@pytest.mark.parametrize("dtype, l2", [("float64", 0.0), ("float64", 0.05), ("float32", 0.0)])
def test_train_to_target_steps_each_network_until_target_or_divergence(kernel_path, dtype, l2):
    model = MLP((5, 7, 3), activation="relu", l2=l2, dtype=dtype)
    x, y = _problem(model.sizes, n=40)
    x_test, y_test = _problem(model.sizes, n=17, seed=1)
    theta = model.init(np.random.default_rng(2), 6)
    eta = np.array([0.01, 0.3, 1.0, 3.0, 0.5, 1e300])
    start = theta.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = train_to_target(model, theta, eta, x, y, x_test, y_test, target=0.45, epochs=60)
    outcomes = []
    with np.errstate(all="ignore"):
        for r in range(6):
            row = start[r:r + 1].copy()
            outcomes.append(_step_to_target(model, row, eta[r], x, y, x_test, y_test, 0.45, 60))
            np.testing.assert_allclose(theta[r], row[0], rtol=1e-4 if dtype == "float32" else 1e-9, atol=1e-6)
            if kernel_path == "whole-network":  # the fused kernel does the same operations in the same order
                np.testing.assert_array_equal(theta[r], row[0])
    assert [tuple(o) for o in zip(run.steps.tolist(), run.reached.tolist(), run.diverged.tolist())] == outcomes
    assert run.reached.any() and run.diverged[-1] and not run.reached.all()


def test_train_to_target_in_several_calls_gives_the_same_bits():
    model = MLP((5, 7, 3))
    x, y = _problem(model.sizes, n=40)
    x_test, y_test = x[:17], y[:17]
    theta = model.init(np.random.default_rng(3), 8)
    eta = np.linspace(0.05, 8.0, 8)
    whole = theta.copy()
    run = train_to_target(model, whole, eta, x, y, x_test, y_test, target=0.5, epochs=50)
    active, steps = np.arange(8), np.zeros(8, dtype=np.int64)
    for epochs in (1, 4, 20, 25):
        sub = theta[active]
        part = train_to_target(model, sub, eta[active], x, y, x_test, y_test, target=0.5, epochs=epochs)
        theta[active] = sub
        steps[active] += part.steps
        active = active[~part.reached & ~part.diverged]
    np.testing.assert_array_equal(theta, whole)
    np.testing.assert_array_equal(steps, run.steps)
    assert 0 < run.reached.sum() < 8


@pytest.mark.parametrize("activation, l2", [("tanh", 0.0), ("relu", 0.05)])
def test_train_balls_gives_the_records_of_train_bit_for_bit(activation, l2):
    model = MLP((5, 7, 3), activation=activation, l2=l2)
    x, y = _problem(model.sizes, n=40)
    x_test, y_test = _problem(model.sizes, n=17, seed=1)
    ball = 3
    theta = np.repeat(model.init(np.random.default_rng(4), 5), ball, axis=0)
    theta[np.arange(15) % ball > 0] += np.random.default_rng(5).uniform(-1e-6, 1e-6, (10, model.n_params))
    eta = np.repeat([0.1, 1.0, 5.0, 30.0, 1e300], ball)  # chaotic, and diverging, balls too
    refs = np.arange(0, 15, ball)
    pairs = np.stack([np.repeat(refs, ball - 1), (refs[:, None] + np.arange(1, ball)).ravel()], axis=1)
    expected, at_stops = [], {}
    with np.errstate(all="ignore"):
        stepped = theta.copy()
        for record in train(model, stepped, eta, x, y, 30, x_test=x_test, y_test=y_test, test_networks=refs,
                            pairs=pairs):
            expected.append(record)
            at_stops[record.epoch] = stepped.copy()
    stops = (0, 4, 5, 17)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = []
        for record in train_balls(model, theta, eta, x, y, 30, ball, x_test=x_test, y_test=y_test, stops=stops):
            got.append(record)
            if record.epoch in stops + (30,):
                np.testing.assert_array_equal(theta, at_stops[record.epoch])
    assert [r.epoch for r in got] == list(range(31))
    for want, have in zip(expected, got):
        for field in ("loss", "train_accuracy", "test_accuracy", "distances", "tensor_distances"):
            np.testing.assert_array_equal(getattr(have, field), getattr(want, field), err_msg=field)
    assert not np.isfinite(got[-1].loss[-1]) or got[-1].loss[-1] > 1e250  # tanh saturates instead


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_divergence_gives_nan_without_errors_or_warnings(activation):
    model = MLP((5, 7, 3), activation=activation)
    x, y = _problem(model.sizes, n=30)
    theta = model.init(np.random.default_rng(0), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records = list(train(model, theta, np.array([0.1, 1e300]), x, y, 30))
    assert np.isfinite(records[-1].loss[0])
    # tanh and sigmoid saturate, so the loss stays finite but enormous; relu overflows to inf/NaN
    assert not np.isfinite(records[-1].loss[1]) or (activation != "relu" and records[-1].loss[1] > 1e250)


def test_float32_option():
    model = MLP((5, 7, 3), dtype="float32")
    x, y = _problem(model.sizes)
    theta = model.init(np.random.default_rng(0), 2)
    assert theta.dtype == np.float32
    evaluation = model.evaluate(theta, x, y)
    assert evaluation.grad.dtype == np.float32
    reference = MLP((5, 7, 3)).evaluate(theta.astype(np.float64), x, y)
    np.testing.assert_allclose(evaluation.loss, reference.loss, rtol=1e-5)


@pytest.mark.parametrize("kwargs, field", [
    (dict(sizes=(4, 3)), "model.sizes"),
    (dict(sizes=(4, 0, 3)), "model.sizes"),
    (dict(sizes=(4, 5, 1)), "model.sizes"),
    (dict(sizes=(4, 5, 3), activation="gelu"), "model.activation"),
    (dict(sizes=(4, 5, 3), l2=-1.0), "model.l2"),
    (dict(sizes=(4, 5, 3), init_std=0.0), "model.init_std"),
    (dict(sizes=(4, 5, 3), dtype="float16"), "model.dtype"),
])
def test_bad_model_parameters_name_the_field(kwargs, field):
    with pytest.raises(GdchaosError, match=field):
        MLP(**kwargs)


@pytest.mark.parametrize("x, y, message", [
    (np.zeros((3, 5)), np.array([0, 1, 3]), "labels must lie in"),
    (np.zeros((3, 5)), np.array([0, -1, 2]), "labels must lie in"),
    (np.full((3, 4), 0.5), np.array([0, 1, 2]), "inputs must have shape"),
    (np.array([[0.0] * 5, [np.nan] * 5, [0.0] * 5]), np.array([0, 1, 2]), "NaN or inf"),
    (np.zeros((3, 5)), np.array([0.0, 1.0, 2.0]), "must be integers"),
])
def test_bad_data_is_reported_before_any_kernel(x, y, message):
    with pytest.raises(ValueError, match=message):
        MLP((5, 4, 3)).check_data(x, y)
