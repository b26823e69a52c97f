"""What is particular to CNNs (the shared contract is tests/nn/test_contract.py): max-pool ties, thread
counts of the Hessian operator, the paper's network, and the spec's validation."""
import numpy as np
import pytest

from gdchaos import backend
from gdchaos.engine.train import train
from gdchaos.errors import GdchaosError
from gdchaos.nn import CNN, PAPER_LAYERS, CNNHessianOperator, paper_cnn

CONV = {"type": "conv", "channels": 3, "kernel": 3, "padding": 1}
LAYERS = [CONV, {"type": "relu"}, {"type": "maxpool"}, {"type": "conv", "channels": 2, "kernel": 2}, {"type": "tanh"}]


def _problem(model, n=7, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, model.n_features)), rng.integers(0, model.n_classes, n)


def _params(model, n_networks, seed=1, std=0.5):
    """Random weights and biases (nonzero biases, so that their gradients are exercised)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, std, (n_networks, model.n_params))
    theta[:, ~model.weight_mask()] *= 0.6
    return theta


@pytest.mark.parametrize("kept", [False, True])  # the theta-only arrays recomputed or kept
def test_hessian_vector_products_do_not_depend_on_the_number_of_threads(kept, numba_threads):
    model = CNN((1, 6, 6), LAYERS, n_classes=3, l2=1e-3)
    x, y = _problem(model, n=300)
    theta = _params(model, 3)
    v = np.random.default_rng(2).normal(size=theta.shape)
    budget = CNNHessianOperator(model, theta, x, y, memory_budget=1).kept_bytes(3, 300) if kept else 30_000
    with numba_threads(1):
        one = CNNHessianOperator(model, theta, x, y, memory_budget=budget)
        assert (one._kept is not None) == kept and 300 > 16 * one._step  # several tasks
        one = one(v)
    with numba_threads(2):
        two = CNNHessianOperator(model, theta, x, y, memory_budget=budget)(v)
    np.testing.assert_array_equal(one, two)


def test_maxpool_ties_go_to_the_first_maximum():
    # kernel [[1, 0], [0, 0]] copies pixel (y, x) to Z[y, x]; the 2x2 window of Z at the origin is
    # an exact 4-way tie while the patches under it differ, so dL/dK shows which one was chosen
    model = CNN((1, 4, 4), [{"type": "conv", "channels": 1, "kernel": 2}, {"type": "maxpool"}], n_classes=2)
    image = np.random.default_rng(0).random((4, 4)) + 2.0
    image[:2, :2] = 1.5
    theta = model.flatten([np.array([[[[1.0, 0.0], [0.0, 0.0]]]]), np.zeros((1, 1)),
                           np.array([[[1.0, -1.0]]]), np.zeros((1, 2))])
    evaluation = model.evaluate(theta, image.reshape(1, 16), np.array([0]))
    p = 1.0 / (1.0 + np.exp(-2 * 1.5))  # softmax of logits (1.5, -1.5), label 0
    d_pooled = (p - 1.0) - (1.0 - p)
    np.testing.assert_allclose(evaluation.grad[0, :4], d_pooled * image[:2, :2].ravel(), rtol=1e-14)
    # the same rule in the pooling kernels behind later convs, after an activation that saturates
    z = np.array([30.0, 31.0, -2.0, 31.0]).reshape(1, 1, 2, 2, 1)
    pooled, arg = backend.pool_activate(z, np.zeros((1, 1)), "tanh", 2)
    assert pooled[0, 0, 0, 0, 0] == 1.0 and arg[0, 0, 0, 0, 0] == 0  # tanh(30) == tanh(31) == 1.0
    z = np.array([-1.0, 2.0, 2.0, 2.0]).reshape(1, 1, 2, 2, 1)
    pooled, arg = backend.pool_activate(z, np.zeros((1, 1)), None, 2)
    assert arg[0, 0, 0, 0, 0] == 1
    grad = backend.pool_activate_backward(np.full((1, 1, 1, 1, 1), 3.0), pooled, arg, None, 2, 2, 2)
    np.testing.assert_array_equal(grad.ravel(), [0.0, 3.0, 0.0, 0.0])


def test_paper_network_size_layout_and_initialisation():
    model = paper_cnn()
    assert model.n_params == 9_098
    assert model.activation == "relu" and model.init_std == 0.01 and model.l2 == 0.0
    assert [(t.name, t.shape, t.offset) for t in model.layout()] == [
        ("W1", (8, 1, 3, 3), 0), ("b1", (8,), 72), ("W2", (16, 8, 3, 3), 80), ("b2", (16,), 1232),
        ("W3", (784, 10), 1248), ("b3", (10,), 9088)]
    theta = model.init(np.random.default_rng(0), 3)
    weights = theta[:, model.weight_mask()]
    assert np.all(theta[:, ~model.weight_mask()] == 0)
    assert abs(weights.std() - 0.01) < 2e-4 and abs(weights.mean()) < 2e-4
    tensors = model.unflatten(theta)
    np.testing.assert_array_equal(model.flatten(tensors), theta)
    tensors[1][:] = -1.0  # views write through
    assert np.all(theta[:, 72:80] == -1.0)


def test_spec_round_trips_through_a_dict():
    model = CNN((3, 8, 8), [*PAPER_LAYERS[:3], {"type": "linear"}], n_classes=5, init_std=0.1,
                l2=1e-4, dtype="float32")
    values = model.to_dict()
    assert values["layers"] == [dict(layer) for layer in PAPER_LAYERS[:3]]  # the implied linear dropped
    assert CNN.from_dict(values) == model
    assert CNN.from_dict({"layers": values["layers"]}) == CNN(layers=PAPER_LAYERS[:3])
    assert CNN.from_dict(paper_cnn().to_dict()).n_params == 9_098


@pytest.mark.parametrize("options, field", [
    ({"layers": [{"type": "pool"}]}, "model.layers[0].type"),
    ({"layers": [{"channels": 2}]}, "model.layers[0].type"),
    ({"layers": ["conv"]}, "model.layers[0]:"),
    ({"layers": "conv"}, "model.layers:"),
    ({"layers": [{"type": "conv", "kernel": 3}]}, "model.layers[0].channels"),
    ({"layers": [{"type": "relu"}, {"type": "conv", "channels": 0, "kernel": 3}]},
     "model.layers[1].channels"),
    ({"layers": [{"type": "conv", "channels": True, "kernel": 3}]}, "model.layers[0].channels"),
    ({"layers": [{"type": "conv", "channels": 2, "kernel": 2.5}]}, "model.layers[0].kernel"),
    ({"layers": [{"type": "conv", "channels": 2, "kernel": 3, "padding": 3}]}, "model.layers[0].padding"),
    ({"layers": [{"type": "conv", "channels": 2, "kernel": 3, "stride": 2}]}, "'stride'"),
    ({"layers": [{"type": "conv", "channels": 2, "kernel": 7}], "input_shape": (1, 5, 5)},
     "model.layers[0].kernel"),
    ({"layers": [{"type": "maxpool", "size": 1}]}, "model.layers[0].size"),
    ({"layers": [{"type": "maxpool", "size": 8}, {"type": "maxpool", "size": 4}]}, "model.layers[1].size"),
    ({"layers": [{"type": "relu", "size": 2}]}, "'size'"),
    ({"layers": [{"type": "linear"}, {"type": "relu"}]}, "model.layers[0].type"),
    ({"input_shape": (1, 28)}, "model.input_shape"),
    ({"input_shape": (1, 0, 28)}, "model.input_shape"),
    ({"n_classes": 1}, "model.n_classes"),
    ({"init_std": 0.0}, "model.init_std"),
    ({"l2": -1.0}, "model.l2"),
    ({"dtype": "float16"}, "model.dtype"),
])
def test_bad_specs_name_the_field(options, field):
    with pytest.raises(GdchaosError) as error:
        CNN(**options)
    assert field in str(error.value) and "\n" not in str(error.value)


def test_unknown_config_keys_and_bad_data_are_reported():
    with pytest.raises(GdchaosError, match="model: unknown key 'stride'"):
        CNN.from_dict({"stride": 2})
    model = CNN((1, 4, 4), [{"type": "relu"}], n_classes=3)
    with pytest.raises(GdchaosError, match=r"data: inputs must have shape \(N, 16\)"):
        model.check_data(np.zeros((2, 15)), np.zeros(2, dtype=int))
    with pytest.raises(GdchaosError, match="labels must lie in"):
        model.check_data(np.zeros((2, 16)), np.array([0, 3]))
    model.check_data(np.zeros((2, 16)), np.array([0, 2]))


def test_train_records_epochs_and_distances_for_the_paper_network():
    model = paper_cnn()
    x, y = _problem(model, n=48)
    reference = model.init(np.random.default_rng(0), 1)
    noise = np.random.default_rng(1).uniform(-1e-8, 1e-8, (2, model.n_params)) * model.weight_mask()
    theta = np.concatenate([reference, reference + noise])
    records = list(train(model, theta, 0.5, x, y, 3, x_test=x[:10], y_test=y[:10],
                         test_networks=np.array([0]), pairs=[[0, 1], [0, 2]]))
    assert [r.epoch for r in records] == [0, 1, 2, 3]
    assert records[0].distances == pytest.approx(np.abs(noise).sum(axis=1), rel=1e-6)
    assert all(np.all(np.isfinite(r.distances)) and r.test_accuracy.shape == (1,) for r in records)
    assert records[-1].loss[0] < records[0].loss[0]
    assert records[-1].loss[0] == model.evaluate(theta[:1], x, y, grad=False).loss[0]


