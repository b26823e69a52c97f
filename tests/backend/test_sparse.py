"""Sparse first-layer kernels (backend.sparse) against dense NumPy products."""
import numpy as np
import pytest

import gdchaos.backend.sparse as sparse
import gdchaos.nn.mlp
from gdchaos.nn.mlp import MLP

ACTIVATIONS = {"tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
               "relu": lambda z: np.maximum(z, 0)}
DERIVATIVES = {"tanh": lambda a: 1 - a * a, "sigmoid": lambda a: a * (1 - a),
               "relu": lambda a: (a > 0).astype(float)}


def _sparse_input(n=300, d=70, density=0.2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, d))
    x[rng.random((n, d)) > density] = 0.0
    x[5] = 0.0  # a sample with no nonzero at all
    return x


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("start, stop", [(0, 300), (64, 192), (128, 300)])
@pytest.mark.parametrize("tile_columns", [384, 10, 4])  # all networks in one group; 2 per group; 1
def test_forward_and_backward_match_dense_products(activation, start, stop, tile_columns, monkeypatch):
    monkeypatch.setattr(sparse, "TILE_COLUMNS", tile_columns)
    x = _sparse_input()
    rng = np.random.default_rng(1)
    n_nets, width = 3, 5
    w1 = rng.normal(size=(n_nets, x.shape[1], width))
    b1 = rng.normal(size=(n_nets, width))
    rows = sparse.to_sparse_rows(x)
    a = sparse.sparse_forward(rows, start, stop, sparse.first_layer_blocks(w1), b1, activation)
    z = np.einsum("nd,rdh->rnh", x[start:stop], w1) + b1[:, None, :]
    np.testing.assert_allclose(a, ACTIVATIONS[activation](z), rtol=1e-12, atol=1e-14)

    grad_a = rng.normal(size=a.shape)
    grad_w, grad_b = np.ones_like(w1), np.ones_like(b1)  # gradients are added into these
    sparse.sparse_backward(rows, start, stop, grad_a, a, activation, grad_w, grad_b)
    delta = grad_a * DERIVATIVES[activation](a)
    np.testing.assert_allclose(grad_w, 1 + np.einsum("nd,rnh->rdh", x[start:stop], delta),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_b, 1 + delta.sum(axis=1), rtol=1e-12, atol=1e-12)


def test_backward_refuses_chunks_that_cut_a_block():
    x = _sparse_input()
    rows = sparse.to_sparse_rows(x)
    a = np.zeros((1, 10, 2))
    with pytest.raises(ValueError, match="blocks of 64"):
        sparse.sparse_backward(rows, 10, 20, a, a, "tanh", np.zeros((1, 70, 2)), np.zeros((1, 2)))


def test_model_uses_sparse_form_only_for_wide_mostly_zero_inputs():
    assert sparse.sparse_rows(_sparse_input()) is not None
    assert sparse.sparse_rows(_sparse_input(density=0.9)) is None
    assert sparse.sparse_rows(_sparse_input(d=4)) is None
    assert sparse.sparse_rows(_sparse_input()[:, ::2]) is None  # not contiguous


def test_cache_notices_an_input_edited_in_place():
    x = _sparse_input()
    first = sparse.sparse_rows(x)
    assert sparse.sparse_rows(x) is first
    x *= 2.0
    again = sparse.sparse_rows(x)
    assert again is not first and np.array_equal(again.values, 2.0 * first.values)


@pytest.fixture
def layered(monkeypatch):
    monkeypatch.setattr(gdchaos.nn.mlp, "SMALL_NETWORK_BYTES", 0)


def _evaluate(model, theta, x, y, dense: bool, monkeypatch, **kwargs):
    monkeypatch.setattr(sparse, "MAX_DENSITY", 0.0 if dense else 0.4)
    return model.evaluate(theta, x.copy(), y, **kwargs)  # a fresh array: no cached sparse form


@pytest.mark.parametrize("sizes", [(70, 9, 4), (70, 8, 6, 4)])
def test_evaluation_equals_the_dense_path_with_chunks(sizes, layered, monkeypatch):
    x = _sparse_input(n=1000)
    y = np.random.default_rng(2).integers(0, sizes[-1], x.shape[0])
    model = MLP(sizes, l2=0.01)
    theta = model.init(np.random.default_rng(3), 4)
    dense = _evaluate(model, theta, x, y, True, monkeypatch)
    for budget in (1 << 30, 20_000):  # one chunk; chunks of 64-sample blocks
        got = _evaluate(model, theta, x, y, False, monkeypatch, memory_budget=budget)
        np.testing.assert_allclose(got.loss, dense.loss, rtol=1e-12)
        np.testing.assert_array_equal(got.accuracy, dense.accuracy)
        assert np.abs(got.grad - dense.grad).max() <= 1e-12 * np.abs(dense.grad).max()
    accuracy = model.accuracy(theta, x, y)
    np.testing.assert_array_equal(accuracy, dense.accuracy)


def test_sparse_path_is_bit_identical_across_threads_and_batching(layered, numba_threads):
    x = _sparse_input(n=700, d=100)
    y = np.random.default_rng(4).integers(0, 3, x.shape[0])
    model = MLP((100, 150, 3))  # 2 networks x 150 units: the backward splits columns
    theta = model.init(np.random.default_rng(5), 2)
    with numba_threads(1):
        one = model.evaluate(theta, x, y)
    many = model.evaluate(theta, x, y)
    assert np.array_equal(one.grad, many.grad) and np.array_equal(one.loss, many.loss)
    alone = model.evaluate(theta[1:], x, y)
    assert np.array_equal(alone.grad[0], many.grad[1])


@pytest.mark.parametrize("start, stop", [(0, 300), (64, 256)])
def test_plain_products_match_dense(start, stop):
    x = _sparse_input()
    rng = np.random.default_rng(6)
    rows = sparse.to_sparse_rows(x)
    w_cat = rng.normal(size=(x.shape[1], 300))  # 300 columns: split between threads
    np.testing.assert_allclose(sparse.sparse_matmul(rows, start, stop, w_cat), x[start:stop] @ w_cat,
                               rtol=1e-12, atol=1e-12)
    delta = rng.normal(size=(stop - start, 300))
    np.testing.assert_allclose(sparse.sparse_transposed_matmul(rows, start, stop, delta),
                               x[start:stop].T @ delta, rtol=1e-12, atol=1e-12)


def test_hessian_vector_products_equal_the_dense_path(layered, monkeypatch):
    from gdchaos.hessian import hessian_vector_product

    x = _sparse_input(n=500)
    y = np.random.default_rng(7).integers(0, 4, x.shape[0])
    model = MLP((70, 9, 4), activation="tanh", l2=0.01)
    theta = model.init(np.random.default_rng(8), 3)
    v = np.random.default_rng(9).normal(size=theta.shape)
    products = {}
    for density in (0.0, 0.4):  # dense path, then sparse
        monkeypatch.setattr(sparse, "MAX_DENSITY", density)
        products[density] = hessian_vector_product(model, theta, v, x.copy(), y, memory_budget=40_000)
    scale = np.abs(products[0.0]).max()
    assert np.abs(products[0.4] - products[0.0]).max() <= 1e-12 * scale


@pytest.mark.parametrize("width", [5, 50])  # one tile of 64 columns; 150 columns over three tiles
def test_output_layer_fused_into_the_sparse_kernels_matches_numpy(width):
    x = _sparse_input(n=300, d=130)  # three blocks of 64 features
    rng = np.random.default_rng(10)
    n_nets, n_classes, start, stop = 3, 4, 64, 300
    w1, b1 = rng.normal(size=(n_nets, x.shape[1], width)), rng.normal(size=(n_nets, width))
    w2 = rng.normal(size=(n_nets, width, n_classes))
    rows = sparse.to_sparse_rows(x)
    logits = np.empty((n_nets, stop - start, n_classes))
    a = sparse.sparse_forward(rows, start, stop, sparse.first_layer_blocks(w1), b1, "tanh", w2=w2, logits=logits)
    expected_a = np.tanh(np.einsum("nd,rdh->rnh", x[start:stop], w1) + b1[:, None, :])
    np.testing.assert_allclose(a, expected_a, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(logits, expected_a @ w2, rtol=1e-12, atol=1e-12)

    delta_out = rng.normal(size=logits.shape)
    grad_w, grad_b, grad_w2 = np.ones_like(w1), np.ones_like(b1), np.ones_like(w2)
    sparse.sparse_backward_output(rows, start, stop, delta_out, w2, a, "tanh", grad_w, grad_b, grad_w2)
    delta = (delta_out @ w2.transpose(0, 2, 1)) * (1 - a * a)
    np.testing.assert_allclose(grad_w2, 1 + a.transpose(0, 2, 1) @ delta_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_w, 1 + np.einsum("nd,rnh->rdh", x[start:stop], delta), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_b, 1 + delta.sum(axis=1), rtol=1e-12, atol=1e-12)
