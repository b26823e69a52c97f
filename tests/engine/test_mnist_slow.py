"""MNIST-scale checks of the whole engine (slow: run with `pytest -m slow`; need MNIST in $GDCHAOS_DATA)."""
import numpy as np
import pytest

import gdchaos.backend.sparse as sparse
import gdchaos.data
from gdchaos.analysis.fit import fit_local_exponent
from gdchaos.engine.train import train
from gdchaos.nn import MLP

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist():
    if not (gdchaos.data.dataset_dir("mnist") / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("MNIST is not in $GDCHAOS_DATA")
    return gdchaos.data.load("mnist")


def test_sparse_first_layer_equals_dense_products_on_mnist(mnist, monkeypatch):
    x, y, _, _ = mnist
    model = MLP((784, 64, 10))
    theta = model.init(np.random.default_rng(0), 3)
    sparse_path = model.evaluate(theta, x, y)
    monkeypatch.setattr(sparse, "MAX_DENSITY", 0.0)
    dense_path = model.evaluate(theta, x.copy(), y)
    np.testing.assert_allclose(sparse_path.loss, dense_path.loss, rtol=1e-13)
    assert np.abs(sparse_path.grad - dense_path.grad).max() <= 1e-12 * np.abs(dense_path.grad).max()


def test_paper_ball_is_chaotic_at_eta_10_and_not_at_eta_1(mnist):
    """Paper Figs. 2-3: the eps-ball of 784-64-10 tanh grows exponentially at eta = 10 (lambda of
    order 0.6) and stays tight at eta = 1 (40 epochs, 3 replicas, eps = 1e-8 on weights)."""
    x, y, _, _ = mnist
    model = MLP((784, 64, 10))
    rng = np.random.default_rng(1)
    reference = model.init(rng, 1)
    noise = rng.uniform(-1e-8, 1e-8, (3, model.n_params)) * model.weight_mask()
    ball = np.concatenate([reference, reference + noise])
    theta = np.concatenate([ball, ball])
    eta = np.repeat([10.0, 1.0], 4)
    pairs = np.array([[0, 1], [0, 2], [0, 3], [4, 5], [4, 6], [4, 7]])
    d = np.array([record.distances for record in train(model, theta, eta, x, y, 40, pairs=pairs)])
    chaotic = fit_local_exponent(d[:, :3].mean(axis=1))
    assert 0.3 < chaotic.lyapunov < 1.2 and chaotic.r2 > 0.9
    assert d[-1, 3:].max() < 100 * d[0, 3:].max()
