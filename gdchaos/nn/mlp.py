"""Multilayer perceptrons batched over a leading network axis (see :mod:`gdchaos.nn.base`).

The flat layout of one network (row of ``theta``) is, layer after layer::

    W_1 (n_0, n_1) row-major, b_1 (n_1,), W_2 (n_1, n_2), b_2 (n_2,), ..., W_L, b_L

where n_0 is the input dimension, n_L the number of classes, and layer l computes
a_l = act(a_{l-1} @ W_l + b_l) (no activation on the last layer, whose output are the logits).
Three evaluation paths give the same mathematics: the whole-network kernel for small networks on
narrow inputs (:func:`gdchaos.backend.small_mlp`), and layer by layer, with the first layer of all
networks as one BLAS product or, for a mostly-zero input, a sparse gather
(:mod:`gdchaos.backend.sparse`). Which path runs, and why, is in docs/performance.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gdchaos import backend
from gdchaos.checks import check_choice, fail, is_int
from gdchaos.nn.base import DEFAULT_MEMORY_BUDGET, Evaluation, Network, Tensor

# networks on at most SMALL_MAX_FEATURES inputs whose activations on all samples take at most
# SMALL_NETWORK_BYTES run through the whole-network kernel (docs/performance.md)
SMALL_NETWORK_BYTES = 1 << 21
SMALL_MAX_FEATURES = 64
# layer-by-layer evaluations cost about as much per network from this many networks on, several times
# more for a network alone (docs/performance.md)
LAYERED_NETWORKS_PER_CALL = 6


@dataclass(frozen=True)
class MLP(Network):
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
            fail("model.sizes", "input, at least one hidden layer and output", list(sizes))
        if not all(is_int(n) and n >= 1 for n in sizes):
            fail("model.sizes", "integers >= 1", list(sizes))
        if sizes[-1] < 2:
            fail("model.sizes", "at least 2 classes in the output layer", list(sizes))
        check_choice("model.activation", self.activation, backend.ACTIVATIONS)
        self.check_common()

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
    def n_features(self) -> int:
        """Inputs n_0 of one sample."""
        return self.sizes[0]

    @property
    def n_classes(self) -> int:
        """Outputs n_L: the number of classes."""
        return self.sizes[-1]

    def sample_bytes(self, n_networks: int) -> int:
        """Bytes of activations (values and gradients, before and after the nonlinearity) per sample."""
        return 4 * np.dtype(self.dtype).itemsize * n_networks * (sum(self.sizes[1:-1]) + self.sizes[-1])

    def chunk_size(self, n_networks: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
        """Samples per chunk so that one evaluation's activations fit in ``memory_budget`` bytes."""
        return max(1, int(memory_budget // self.sample_bytes(n_networks)))

    def work_bytes(self, n_networks: int, n_samples: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
        """Peak bytes of one evaluation's work arrays: the activations of one chunk of samples."""
        return self.sample_bytes(n_networks) * min(n_samples, self.chunk_size(n_networks, memory_budget))

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
        weights, biases = params[0::2], contiguous(params[1::2])
        first = self.first_layer(weights[0], sparse)
        loss = np.zeros(n_nets)
        correct = np.zeros(n_nets, dtype=np.int64)
        gradient = np.zeros_like(theta) if grad else None
        grads = self.unflatten(gradient) if grad else None
        step = self.chunk_step(n_nets, memory_budget, sparse)
        for start in range(0, n_samples, step):
            stop = min(start + step, n_samples)
            chunk_loss, chunk_correct = self._chunk(weights, biases, first, x, y, start, stop,
                                                    sparse, 1.0 / n_samples, grads, _scratch)
            loss += chunk_loss
            correct += chunk_correct
        return self._with_l2(theta, loss / n_samples, correct / n_samples, gradient)

    def chunk_step(self, n_nets: int, memory_budget: int, sparse) -> int:
        """Samples per chunk of an evaluation of ``n_nets`` networks (:meth:`chunk_size`), whole blocks
        of the sparse input's block-wise order when ``sparse`` (``backend.sparse_rows(x)``) is not None."""
        step = self.chunk_size(n_nets, memory_budget)
        return step if sparse is None else max(backend.SPARSE_BLOCK, step - step % backend.SPARSE_BLOCK)

    def mean_loss(self, summed: np.ndarray, penalty: np.ndarray, n_samples: int) -> np.ndarray:
        """L = (summed cross-entropy) / N + (l2/2) sum_l ||W_l||^2, from the whole-network kernel's sums."""
        loss = summed / n_samples
        return loss + 0.5 * self.l2 * penalty if self.l2 > 0 else loss

    def whole_network(self, n_samples: int) -> bool:
        """Whether passes over ``n_samples`` samples take the whole-network kernel (:mod:`gdchaos.backend.small`)."""
        return self._is_small(n_samples)

    def networks_per_call(self, n_samples: int) -> int:
        """1 on the whole-network kernel (batched over networks in any number), else
        ``LAYERED_NETWORKS_PER_CALL``: a layer-by-layer pass of one network leaves threads idle."""
        return 1 if self._is_small(n_samples) else LAYERED_NETWORKS_PER_CALL

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
        weights, biases = params[0::2], contiguous(params[1::2])
        first = self.first_layer(weights[0], sparse)
        correct = np.zeros(n_nets, dtype=np.int64)
        step = self.chunk_step(n_nets, memory_budget, sparse)
        for start in range(0, x.shape[0], step):
            stop = min(start + step, x.shape[0])
            logits = self.forward(weights, biases, first, x, start, stop, sparse, _scratch)[-1]
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
        :func:`gdchaos.engine.train.train_to_target`, which calls this when :meth:`fused_training`)."""
        return backend.small_train_to_target(theta, eta, x.astype(self.dtype, copy=False), y,
                                             x_test.astype(self.dtype, copy=False), y_test, self.sizes,
                                             self.activation, self.l2, target, epochs)

    def train_balls(self, theta: np.ndarray, eta: np.ndarray, grad: np.ndarray, x: np.ndarray, y: np.ndarray,
                    x_test: np.ndarray, y_test: np.ndarray, ball: int, bounds: np.ndarray, records: int,
                    first_update: bool, grad_last: bool, keep_references: bool = False):
        """``records`` GD epochs of balls of ``ball`` networks (reference first) in one kernel call:
        :func:`gdchaos.backend.small_train_balls` (see :func:`gdchaos.engine.train.train_balls`)."""
        return backend.small_train_balls(theta, eta, grad, x.astype(self.dtype, copy=False), y,
                                         x_test.astype(self.dtype, copy=False), y_test, self.sizes, self.activation,
                                         self.l2, ball, bounds, records, first_update, grad_last, keep_references)

    # --------------------------------------------------------------- kernels
    @staticmethod
    def first_layer(w1: np.ndarray, sparse) -> np.ndarray:
        """The first layers of all networks as :meth:`forward` reads them: W_cat (:func:`first_layer_matrix`)
        for one BLAS product, or grouped (``backend.first_layer_blocks``) when ``sparse`` is not None."""
        return first_layer_matrix(w1) if sparse is None else backend.first_layer_blocks(w1)

    def forward(self, weights, biases, first, x, start, stop, sparse, work=None) -> list[np.ndarray]:
        """Hidden activations [A_1, ..., A_{L-1}] (R, n, h) followed by pre-bias logits (R, n, C),
        for samples [start, stop) of x (read through its sparse form when there is one; ``first``
        from :meth:`first_layer` for that form).

        ``work(tag, shape)`` gives the arrays written (fresh ones by default; evaluations pass the
        thread's reusable scratch arrays, valid until the next evaluation on this thread).
        """
        work = work or fresh_array
        n_nets, n, dtype = biases[0].shape[0], stop - start, first.dtype
        out = work("a1", (n_nets, n, self.sizes[1]), dtype)
        if sparse is None:
            z = backend.input_matmul(x[start:stop], first, out=work("z", (n, first.shape[1]), dtype))
            outputs = [backend.bias_activation_split(z, biases[0], self.activation, out=out)]
        elif self.n_layers == 2:  # the output layer inside the sparse kernel (its rows of A in cache)
            logits = work("logits", (n_nets, n, self.sizes[-1]), dtype)
            backend.sparse_forward(sparse, start, stop, first, biases[0], self.activation, out=out,
                                   w2=weights[1], logits=logits)
            return [out, logits]
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
        outputs = self.forward(weights, biases, first, x, start, stop, sparse, work)
        hidden, logits = outputs[:-1], outputs[-1]
        loss, correct, delta = backend.softmax_cross_entropy(
            logits, biases[-1], y[start:stop], scale, grad=work("delta_out", logits.shape, logits.dtype))
        if grads is None:
            return loss, correct
        grad_w, grad_b = grads[0::2], grads[1::2]
        if sparse is not None and self.n_layers == 2:
            grad_b[1] += delta.sum(axis=1)
            backend.sparse_backward_output(sparse, start, stop, delta, weights[1], hidden[0], self.activation,
                                           grad_w[0], grad_b[0], grad_w[1])
            return loss, correct
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


def contiguous(biases: list[np.ndarray]) -> list[np.ndarray]:
    """Copies of the bias views (R, n) of a flat parameter array: kernels vectorise only over
    contiguous rows (a strided bias made the sparse forward's tanh loop scalar)."""
    return [np.ascontiguousarray(b) for b in biases]


def _scratch(tag: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """This thread's reusable work array for ``tag`` (no page faults on every evaluation)."""
    return backend.scratch(f"mlp-{tag}", shape, dtype)


def fresh_array(tag: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A new work array (for results kept beyond the evaluation, e.g. by the Hessian)."""
    return np.empty(shape, dtype)


def first_layer_matrix(w1: np.ndarray) -> np.ndarray:
    """W_cat (n_0, R*n_1) = [W_1^(1) ... W_1^(R)]: all first layers side by side for one BLAS call."""
    n_nets, n_in, width = w1.shape
    return np.ascontiguousarray(w1.transpose(1, 0, 2)).reshape(n_in, n_nets * width)
