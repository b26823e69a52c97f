"""Multilayer perceptrons batched over a leading network axis.

All R networks of a batch share one architecture and are stored as one array ``theta`` of shape
(R, P). The flat layout of one network (row of ``theta``) is, layer after layer::

    W_1 (n_0, n_1) row-major, b_1 (n_1,), W_2 (n_1, n_2), b_2 (n_2,), ..., W_L, b_L

where n_0 is the input dimension, n_L the number of classes, and layer l computes
a_l = act(a_{l-1} @ W_l + b_l) (no activation on the last layer, whose output are the logits).
:meth:`MLP.layout` lists (name, shape, offset) for each tensor; :meth:`MLP.unflatten` and
:meth:`MLP.flatten` convert between ``theta`` and per-tensor arrays of shape (R, *shape).

Loss (Eq. 2 of the paper plus the optional L2 term of Fig. 11)::

    L(theta) = (1/N) sum_n [ log sum_c exp(z_nc) - z_{n, y_n} ] + (l2 / 2) sum_l ||W_l||^2
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from gdchaos import backend
from gdchaos.errors import GdchaosError

DTYPES = ("float64", "float32")
DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of activations per evaluation before samples are split
# networks with few inputs whose activations on all samples take at most this many bytes run
# through the whole-network kernel (backend.small_mlp), one network per thread at a time; measured
# 2-3.5x faster than the layer-by-layer path for digits (64 inputs, 1,437 samples, hidden 10 to 128,
# up to 1.5 MB), while for MNIST's 784 sparse inputs the layered path with the sparse first layer
# is 2-3x faster even at 0.2 MB
SMALL_NETWORK_BYTES = 1 << 21
SMALL_MAX_FEATURES = 64


class Tensor(NamedTuple):
    """One parameter tensor of the flat layout."""

    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


class Evaluation(NamedTuple):
    """Loss, accuracy and (optionally) gradient of every network of a batch."""

    loss: np.ndarray  # (R,) mean cross-entropy + L2 term
    accuracy: np.ndarray  # (R,) fraction of samples classified correctly
    grad: np.ndarray | None  # (R, P) gradient of ``loss`` w.r.t. theta, same layout


@dataclass(frozen=True)
class MLP:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]`` with one activation.

    Parameters
    ----------
    sizes: layer widths, input first and number of classes last; at least one hidden layer.
    activation: ``tanh``, ``sigmoid`` or ``relu`` on every hidden layer.
    l2: weight-decay coefficient lambda of the term (lambda/2)||W||^2 (weights only, not biases).
    init_std: standard deviation sigma of the N(0, sigma^2) initial weights (biases start at 0).
    dtype: ``float64`` (default) or ``float32``.
    """

    sizes: tuple[int, ...]
    activation: str = "tanh"
    l2: float = 0.0
    init_std: float = 1.0
    dtype: str = "float64"

    def __post_init__(self) -> None:
        sizes = tuple(self.sizes)
        object.__setattr__(self, "sizes", sizes)
        if len(sizes) < 3:
            raise GdchaosError(
                f"model.sizes: need input, at least one hidden layer and output, got {list(sizes)}")
        if any(not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1 for n in sizes):
            raise GdchaosError(f"model.sizes: every layer size must be an integer >= 1, got {list(sizes)}")
        if sizes[-1] < 2:
            raise GdchaosError(f"model.sizes: the output layer needs >= 2 classes, got {sizes[-1]}")
        if self.activation not in backend.ACTIVATIONS:
            raise GdchaosError(
                f"model.activation: unknown {self.activation!r}; allowed: {', '.join(backend.ACTIVATIONS)}")
        if not np.isfinite(self.l2) or self.l2 < 0:
            raise GdchaosError(f"model.l2: must be a finite number >= 0, got {self.l2}")
        if not np.isfinite(self.init_std) or self.init_std <= 0:
            raise GdchaosError(f"model.init_std: must be a finite number > 0, got {self.init_std}")
        if self.dtype not in DTYPES:
            raise GdchaosError(f"model.dtype: unknown {self.dtype!r}; allowed: {', '.join(DTYPES)}")

    # ----------------------------------------------------------------- layout
    @property
    def n_layers(self) -> int:
        """Number of weight matrices L."""
        return len(self.sizes) - 1

    def layout(self) -> list[Tensor]:
        """The flat layout of one network: (name, shape, offset) of W_1, b_1, ..., W_L, b_L."""
        tensors, offset = [], 0
        for layer, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            for name, shape in ((f"W{layer}", (n_in, n_out)), (f"b{layer}", (n_out,))):
                tensors.append(Tensor(name, shape, offset))
                offset += int(np.prod(shape))
        return tensors

    @property
    def n_params(self) -> int:
        """Number of trainable parameters P of one network."""
        last = self.layout()[-1]
        return last.offset + last.size

    def weight_mask(self) -> np.ndarray:
        """Boolean (P,) mask, True on weights and False on biases."""
        mask = np.zeros(self.n_params, dtype=bool)
        for tensor in self.layout():
            if tensor.name.startswith("W"):
                mask[tensor.offset:tensor.offset + tensor.size] = True
        return mask

    def unflatten(self, theta: np.ndarray) -> list[np.ndarray]:
        """Views of ``theta`` (R, P) as [W_1 (R, n_0, n_1), b_1 (R, n_1), ...]; writes go through."""
        if theta.ndim != 2 or theta.shape[1] != self.n_params:
            raise GdchaosError(f"theta: expected shape (R, {self.n_params}), got {theta.shape}")
        rows = theta.shape[0]
        return [theta[:, t.offset:t.offset + t.size].reshape((rows, *t.shape)) for t in self.layout()]

    def flatten(self, tensors: list[np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`unflatten`: concatenate per-tensor arrays (R, *shape) into (R, P)."""
        rows = tensors[0].shape[0]
        return np.concatenate([np.reshape(t, (rows, -1)) for t in tensors], axis=1).astype(self.dtype)

    # ------------------------------------------------------------ initialise
    def init(self, rng: np.random.Generator, n_networks: int = 1) -> np.ndarray:
        """theta (R, P): weights ~ N(0, init_std^2), biases = 0, drawn in layout order."""
        theta = np.zeros((n_networks, self.n_params), dtype=self.dtype)
        mask = self.weight_mask()
        theta[:, mask] = rng.normal(0.0, self.init_std, size=(n_networks, int(mask.sum())))
        return theta

    # ------------------------------------------------------------- evaluate
    def check_data(self, x: np.ndarray, y: np.ndarray) -> None:
        """Raise ``GdchaosError`` unless x (N, n_0) is finite and y (N,) holds labels in [0, n_L)."""
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise GdchaosError(f"data: inputs must have shape (N, {self.sizes[0]}), got {x.shape}")
        if y.shape != (x.shape[0],):
            raise GdchaosError(f"data: labels must have shape ({x.shape[0]},), got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise GdchaosError(f"data: labels must be integers, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= self.sizes[-1]):
            raise GdchaosError(
                f"data: labels must lie in [0, {self.sizes[-1] - 1}], got [{y.min()}, {y.max()}]")
        if not np.all(np.isfinite(x)):
            raise GdchaosError("data: inputs contain NaN or inf")

    def chunk_size(self, n_networks: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
        """Samples per chunk so that one evaluation's activations fit in ``memory_budget`` bytes."""
        itemsize = np.dtype(self.dtype).itemsize
        per_sample = 4 * itemsize * n_networks * (sum(self.sizes[1:-1]) + self.sizes[-1])
        return max(1, int(memory_budget // per_sample))

    def evaluate(self, theta: np.ndarray, x: np.ndarray, y: np.ndarray, *, grad: bool = True,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Evaluation:
        """Loss, accuracy and gradient of all R networks on the full data set (x, y).

        The data are split into chunks of samples when the activations of all networks would
        exceed ``memory_budget`` bytes; the result does not depend on the split beyond round-off.
        Inputs are trusted here (see :meth:`check_data`): this is the hot path.
        """
        n_samples = x.shape[0]
        n_nets = theta.shape[0]
        x = x.astype(self.dtype, copy=False)
        if self._is_small(n_samples):
            loss, correct, penalty, gradient = backend.small_mlp(
                theta, x, y, self.sizes, self.activation, 1.0 / n_samples,
                backend.SMALL_GRADIENT if grad else backend.SMALL_LOSS, self.l2)
            return Evaluation(self.mean_loss(loss, penalty, n_samples), correct / n_samples, gradient)
        sparse = backend.sparse_rows(x)
        params = self.unflatten(theta)
        weights, biases = params[0::2], params[1::2]
        first = _first_layer_matrix(weights[0])
        loss = np.zeros(n_nets)
        correct = np.zeros(n_nets, dtype=np.int64)
        gradient = np.zeros_like(theta) if grad else None
        grads = self.unflatten(gradient) if grad else None
        step = self._chunk_step(n_nets, memory_budget, sparse)
        for start in range(0, n_samples, step):
            stop = min(start + step, n_samples)
            chunk_loss, chunk_correct = self._chunk(weights, biases, first, x, y, start, stop,
                                                    sparse, 1.0 / n_samples, grads, _scratch)
            loss += chunk_loss
            correct += chunk_correct
        return self._with_l2(theta, loss / n_samples, correct / n_samples, gradient)

    def _chunk_step(self, n_nets: int, memory_budget: int, sparse) -> int:
        """Samples per chunk; whole blocks of the sparse input's block-wise order when sparse."""
        step = self.chunk_size(n_nets, memory_budget)
        return step if sparse is None else max(backend.SPARSE_BLOCK, step - step % backend.SPARSE_BLOCK)

    def mean_loss(self, summed: np.ndarray, penalty: np.ndarray, n_samples: int) -> np.ndarray:
        """L = (summed cross-entropy) / N + (l2/2) sum_l ||W_l||^2, from the whole-network kernel's sums."""
        loss = summed / n_samples
        return loss + 0.5 * self.l2 * penalty if self.l2 > 0 else loss

    def _is_small(self, n_samples: int) -> bool:
        """Whether to use the whole-network kernel: few inputs, one network's activations near cache size."""
        return (self.sizes[0] <= SMALL_MAX_FEATURES and
                n_samples * sum(self.sizes[1:]) * np.dtype(self.dtype).itemsize <= SMALL_NETWORK_BYTES)

    def _with_l2(self, theta, loss, accuracy, gradient) -> Evaluation:
        """Add (l2/2) sum ||W||^2 to the loss and l2 W to the weight gradients."""
        if self.l2 > 0:
            weights = self.unflatten(theta)[0::2]
            loss = loss + 0.5 * self.l2 * sum(np.sum(w * w, axis=tuple(range(1, w.ndim))) for w in weights)
            if gradient is not None:
                for w, g in zip(weights, self.unflatten(gradient)[0::2]):
                    g += self.l2 * w
        return Evaluation(loss, accuracy, gradient)

    def accuracy(self, theta: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> np.ndarray:
        """Fraction of samples of (x, y) that each network classifies correctly, (R,)."""
        n_nets = theta.shape[0]
        x = x.astype(self.dtype, copy=False)
        if self._is_small(x.shape[0]):
            _, correct, _, _ = backend.small_mlp(theta, x, y, self.sizes, self.activation, 1.0,
                                                 backend.SMALL_ACCURACY)
            return correct / max(1, x.shape[0])
        sparse = backend.sparse_rows(x)
        params = self.unflatten(theta)
        weights, biases = params[0::2], params[1::2]
        first = _first_layer_matrix(weights[0])
        correct = np.zeros(n_nets, dtype=np.int64)
        step = self._chunk_step(n_nets, memory_budget, sparse)
        for start in range(0, x.shape[0], step):
            stop = min(start + step, x.shape[0])
            logits = self._logits(weights, biases, first, x, start, stop, sparse, _scratch)[-1]
            correct += backend.count_correct(logits, biases[-1], y[start:stop])
        return correct / max(1, x.shape[0])

    def fused_training(self, n_samples: int, n_test: int) -> bool:
        """Whether :meth:`train_to_target` can train on these sample counts (the whole-network kernel)."""
        return self._is_small(n_samples) and self._is_small(n_test) and n_test > 0

    def train_to_target(self, theta: np.ndarray, eta: np.ndarray, x: np.ndarray, y: np.ndarray,
                        x_test: np.ndarray, y_test: np.ndarray, target: float,
                        epochs: int) -> tuple[np.ndarray, np.ndarray]:
        """GD steps (Eq. 1) of each network, in place, until its test accuracy reaches ``target``, its
        loss is not finite, or ``epochs`` steps: all of them in one kernel call (see
        :func:`gdchaos.train.train_to_target`, which calls this when :meth:`fused_training`)."""
        return backend.small_train_to_target(theta, eta, x.astype(self.dtype, copy=False), y,
                                             x_test.astype(self.dtype, copy=False), y_test, self.sizes,
                                             self.activation, self.l2, target, epochs)

    def train_balls(self, theta: np.ndarray, eta: np.ndarray, grad: np.ndarray, x: np.ndarray, y: np.ndarray,
                    x_test: np.ndarray, y_test: np.ndarray, ball: int, bounds: np.ndarray, records: int,
                    first_update: bool, grad_last: bool):
        """``records`` GD epochs of balls of ``ball`` networks (reference first) in one kernel call:
        :func:`gdchaos.backend.small_train_balls` (see :func:`gdchaos.train.train_balls`)."""
        return backend.small_train_balls(theta, eta, grad, x.astype(self.dtype, copy=False), y,
                                         x_test.astype(self.dtype, copy=False), y_test, self.sizes, self.activation,
                                         self.l2, ball, bounds, records, first_update, grad_last)

    # --------------------------------------------------------------- kernels
    def _logits(self, weights, biases, first, x, start, stop, sparse, work=None) -> list[np.ndarray]:
        """Hidden activations [A_1, ..., A_{L-1}] (R, n, h) followed by pre-bias logits (R, n, C),
        for samples [start, stop) of x (read through its sparse form when there is one).

        ``work(tag, shape)`` gives the arrays written (fresh ones by default; evaluations pass the
        thread's reusable scratch arrays, valid until the next evaluation on this thread).
        """
        work = work or _fresh
        n_nets, n, dtype = first.shape[1] // self.sizes[1], stop - start, first.dtype
        out = work("a1", (n_nets, n, self.sizes[1]), dtype)
        if sparse is None:
            z = backend.input_matmul(x[start:stop], first, out=work("z", (n, first.shape[1]), dtype))
            outputs = [backend.bias_activation_split(z, biases[0], self.activation, out=out)]
        else:
            outputs = [backend.sparse_forward(sparse, start, stop, first, biases[0], self.activation,
                                              out=out)]
        for layer, (w, b) in enumerate(zip(weights[1:-1], biases[1:-1]), start=2):
            z = backend.batched_matmul(outputs[-1], w, out=work(f"a{layer}", (n_nets, n, w.shape[2]), dtype))
            outputs.append(backend.bias_activation_(z, b, self.activation))
        outputs.append(backend.batched_matmul(outputs[-1], weights[-1],
                                              out=work("logits", (n_nets, n, self.sizes[-1]), dtype)))
        return outputs

    def _chunk(self, weights, biases, first, x, y, start, stop, sparse, scale, grads, work):
        """Forward and backward pass on samples [start, stop); gradients are added into ``grads``."""
        outputs = self._logits(weights, biases, first, x, start, stop, sparse, work)
        hidden, logits = outputs[:-1], outputs[-1]
        loss, correct, delta = backend.softmax_cross_entropy(
            logits, biases[-1], y[start:stop], scale, grad=work("delta_out", logits.shape, logits.dtype))
        if grads is None:
            return loss, correct
        grad_w, grad_b = grads[0::2], grads[1::2]
        for layer in range(self.n_layers - 1, 0, -1):
            below = hidden[layer - 1]
            grad_w[layer] += backend.batched_matmul(below.transpose(0, 2, 1), delta)
            grad_b[layer] += delta.sum(axis=1)
            grad_below = backend.batched_matmul(delta, weights[layer].transpose(0, 2, 1),
                                                out=work(f"grad_a{layer}", below.shape, below.dtype))
            if layer == 1 and sparse is not None:
                backend.sparse_backward(sparse, start, stop, grad_below, below, self.activation,
                                        grad_w[0], grad_b[0])
                return loss, correct
            n_nets, n, width = below.shape
            shape = (n, n_nets * width) if layer == 1 else below.shape
            delta = backend.activation_backward(grad_below, below, self.activation,
                                                concatenate=layer == 1,
                                                out=work(f"delta{layer}", shape, below.dtype))
        n_nets, n_in, width = grad_w[0].shape
        grad_first = backend.input_matmul_transposed(x[start:stop], delta)
        grad_w[0] += grad_first.reshape(n_in, n_nets, width).transpose(1, 0, 2)
        grad_b[0] += delta.sum(axis=0).reshape(n_nets, width)
        return loss, correct


def _scratch(tag: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """This thread's reusable work array for ``tag`` (no page faults on every evaluation)."""
    return backend.scratch(f"mlp-{tag}", shape, dtype)


def _fresh(tag: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A new work array (for results kept beyond the evaluation, e.g. by the Hessian)."""
    return np.empty(shape, dtype)


def _first_layer_matrix(w1: np.ndarray) -> np.ndarray:
    """W_cat (n_0, R*n_1) = [W_1^(1) ... W_1^(R)]: all first layers side by side for one BLAS call."""
    n_nets, n_in, width = w1.shape
    return np.ascontiguousarray(w1.transpose(1, 0, 2)).reshape(n_in, n_nets * width)
