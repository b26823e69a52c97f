"""What is particular to MLPs (the shared contract is tests/nn/test_contract.py): softmax stability, the
whole-network kernel's bit-identity, the layout, the paper's sizes and the parameter checks."""
import numpy as np
import pytest

from gdchaos.errors import GdchaosError
from gdchaos.nn import MLP


pytestmark = pytest.mark.usefixtures("each_mlp_path")  # every test through the three MLP paths


def _problem(sizes, n=13, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    return x, y


def test_softmax_is_stable_for_huge_logits():
    model = MLP((3, 4, 3), activation="relu", init_std=1e3)
    x, y = _problem(model.sizes)
    evaluation = model.evaluate(model.init(np.random.default_rng(0), 2), x * 1e3, y)
    assert np.all(np.isfinite(evaluation.loss)) and np.all(np.isfinite(evaluation.grad))


def test_whole_network_kernel_is_bit_identical_across_batches_and_threads(each_mlp_path, numba_threads):
    """Each network runs through the same code whatever batch it is in and whichever thread takes it."""
    if each_mlp_path != "whole-network":
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
