"""Full-batch GD of batches of networks (gdchaos.engine.train) against networks stepped one epoch at a
time (MLPs through their three evaluation paths): per-epoch records, training to the target accuracy, and the fused ball calls, bit for bit."""
import warnings

import numpy as np
import pytest

from gdchaos.engine.train import gradient_step, train, train_balls, train_to_target
from gdchaos.nn import MLP


pytestmark = pytest.mark.usefixtures("each_mlp_path")  # every test through the three MLP paths


def _problem(sizes, n=13, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    return x, y


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
def test_train_to_target_steps_each_network_until_target_or_divergence(each_mlp_path, dtype, l2):
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
            if each_mlp_path == "whole-network":  # the fused kernel does the same operations in the same order
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
        for record in train_balls(model, theta, eta, x, y, 30, ball, x_test=x_test, y_test=y_test, stops=stops,
                                  keep_references=True):
            got.append(record)
            np.testing.assert_array_equal(record.references, at_stops[record.epoch][refs])  # every epoch
            if record.epoch in stops + (30,):
                np.testing.assert_array_equal(theta, at_stops[record.epoch])
    assert [r.epoch for r in got] == list(range(31))
    for want, have in zip(expected, got):
        for field in ("loss", "train_accuracy", "test_accuracy", "distances", "tensor_distances"):
            np.testing.assert_array_equal(getattr(have, field), getattr(want, field), err_msg=field)
    assert not np.isfinite(got[-1].loss[-1]) or got[-1].loss[-1] > 1e250  # tanh saturates instead


