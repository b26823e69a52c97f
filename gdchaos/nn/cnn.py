"""Convolutional networks batched over a leading network axis, with the interface of :class:`~gdchaos.nn.MLP`.

A network is a sequence of layers given as TOML-friendly dicts, followed by an implied flatten
and a final linear layer to the logits, e.g. the paper's Fig. 12 network (:func:`paper_cnn`)::

    [{type = "conv", channels = 8, kernel = 3, padding = 1}, {type = "relu"}, {type = "maxpool", size = 2},
     {type = "conv", channels = 16, kernel = 3, padding = 1}, {type = "relu"}, {type = "maxpool", size = 2}]

Layer types: ``conv`` (k x k kernels, stride 1, zero padding, with bias), ``relu`` / ``tanh`` /
``sigmoid``, ``maxpool`` (s x s windows, stride s, first maximum wins ties) and optionally a last
``linear``. Inputs are flat rows (N, C*H*W) in (channel, row, column) order, as the data layer
returns images.

Flat layout of one network (row of ``theta`` (R, P)), parametrised layers in order::

    W_1 (C_1, C_0, k_1, k_1), b_1 (C_1,), ..., W_L (F, n_classes), b_L (n_classes,)

conv kernels as (out, in, row, column), the last layer's W as (in, out) with its F inputs in the
(channel, row, column) order of the flattened feature maps (PyTorch's order, transposed W).
Loss as for the MLP: mean cross-entropy plus (l2/2) * sum of squared weights (not biases).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from gdchaos import backend
from gdchaos.checks import check_int, check_keys, fail, is_int
from gdchaos.errors import GdchaosError
from gdchaos.nn.base import DEFAULT_MEMORY_BUDGET, Evaluation, Network, Tensor

LAYER_TYPES = ("conv", *backend.ACTIVATIONS, "maxpool", "linear")
_KEYS = {"conv": ("channels", "kernel", "padding"), "maxpool": ("size",)}
MAX_POOL_SIZE = 15  # window positions are stored as uint8
CACHE_BYTES = 16 << 20  # work arrays of one chunk of samples (per thread), to stay in cache
CHUNKS_PER_TASK = 16  # chunks a thread sums into one gradient before handing it back
PAPER_LAYERS = (
    {"type": "conv", "channels": 8, "kernel": 3, "padding": 1}, {"type": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "conv", "channels": 16, "kernel": 3, "padding": 1}, {"type": "relu"},
    {"type": "maxpool", "size": 2},
)
PAPER_N_PARAMS = 9_098

Shape = tuple[int, int, int]  # (channels, height, width)


@dataclass(frozen=True)
class Layer:
    """One normalised layer spec; ``channels``/``kernel``/``padding`` for conv, ``size`` for maxpool."""

    type: str
    channels: int = 0
    kernel: int = 0
    padding: int = 0
    size: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The TOML-friendly spec: the type and the keys that apply to it."""
        return {"type": self.type, **{key: getattr(self, key) for key in _KEYS.get(self.type, ())}}


class Block(NamedTuple):
    """Layers computed together: an optional conv, an optional activation, max pooling (1: none)."""

    conv: Layer | None
    activation: str | None
    pool: int
    shape_in: Shape
    shape_mid: Shape  # after the conv
    shape_out: Shape


@dataclass(frozen=True)
class CNN(Network):
    """A convolutional classifier; same interface as :class:`~gdchaos.nn.MLP`.

    Parameters
    ----------
    input_shape: image shape (channels, height, width).
    layers: layer specs (dicts or :class:`Layer`), an implied flatten + linear to the logits last.
    n_classes: number of classes (outputs of the last layer).
    init_std: standard deviation sigma of the N(0, sigma^2) initial weights (biases start at 0).
    l2: weight-decay coefficient lambda of the term (lambda/2)||W||^2 (weights only, not biases).
    dtype: ``float64`` (default) or ``float32``.
    """

    input_shape: Shape = (1, 28, 28)
    layers: tuple[Layer, ...] = ()
    n_classes: int = 10
    init_std: float = 0.01
    l2: float = 0.0
    dtype: str = "float64"
    blocks: tuple[Block, ...] = field(init=False, repr=False, compare=False)  # layers grouped as computed

    def __post_init__(self) -> None:
        shape = self.input_shape
        if not isinstance(shape, Sequence) or len(shape) != 3 or not all(is_int(n) and n >= 1 for n in shape):
            fail("model.input_shape", "three integers >= 1 (channels, height, width)", shape)
        object.__setattr__(self, "input_shape", tuple(int(n) for n in shape))
        check_int("model.n_classes", self.n_classes, 2)
        self.check_common()
        if isinstance(self.layers, (str, Mapping)) or not isinstance(self.layers, Sequence):
            fail("model.layers", "a list of layer tables", self.layers)
        layers = tuple(_parse_layer(spec, i) for i, spec in enumerate(self.layers))
        for i, layer in enumerate(layers[:-1]):
            if layer.type == "linear":
                fail(f"model.layers[{i}].type", "'linear' only as the last layer", layer.type)
        if layers and layers[-1].type == "linear":
            layers = layers[:-1]
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "blocks", group_blocks(layers, self.input_shape))

    # ------------------------------------------------------------ spec / io
    @property
    def activation(self) -> str:
        """Name of the activation used (``+``-joined in order of use when several; ``none``)."""
        names = dict.fromkeys(layer.type for layer in self.layers if layer.type in backend.ACTIVATIONS)
        return "+".join(names) or "none"

    @property
    def n_features(self) -> int:
        """Input size C*H*W of one image."""
        return int(np.prod(self.input_shape))

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain TOML/JSON values; ``CNN.from_dict(m.to_dict()) == m``."""
        return {"input_shape": list(self.input_shape),
                "layers": [layer.to_dict() for layer in self.layers],
                "n_classes": self.n_classes, "init_std": self.init_std, "l2": self.l2,
                "dtype": self.dtype}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CNN:
        """Build from a dict as written by :meth:`to_dict` (missing keys take their defaults)."""
        allowed = ("input_shape", "layers", "n_classes", "init_std", "l2", "dtype")
        check_keys("model", values, allowed)
        return cls(**values)

    # ----------------------------------------------------------------- layout
    @property
    def convs(self) -> list[Block]:
        return [block for block in self.blocks if block.conv is not None]

    @property
    def flat_shape(self) -> Shape:
        """Shape of the feature maps the last layer flattens."""
        return self.blocks[-1].shape_out if self.blocks else self.input_shape

    def layout(self) -> list[Tensor]:
        """The flat layout of one network: (name, shape, offset) of W_1, b_1, ..., W_L, b_L."""
        shapes = [((b.conv.channels, b.shape_in[0], b.conv.kernel, b.conv.kernel), (b.conv.channels,))
                  for b in self.convs]
        shapes.append(((int(np.prod(self.flat_shape)), self.n_classes), (self.n_classes,)))
        tensors, offset = [], 0
        for number, (weight, bias) in enumerate(shapes, start=1):
            for name, shape in ((f"W{number}", weight), (f"b{number}", bias)):
                tensors.append(Tensor(name, shape, offset))
                offset += int(np.prod(shape))
        return tensors

    def sample_bytes(self, n_networks: int) -> int:
        """Bytes of work arrays per sample: the patches of each conv (reused for their gradient),
        twice its output (values, gradient) and twice each block's output."""
        floats = 2 * self.n_classes
        for block in self.blocks:
            mid = int(np.prod(block.shape_mid))
            floats += 2 * mid + 2 * int(np.prod(block.shape_out))
            if block.conv is not None:
                floats += mid // block.conv.channels * block.shape_in[0] * block.conv.kernel ** 2
        return np.dtype(self.dtype).itemsize * n_networks * floats

    def chunk_size(self, n_networks: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
        """Samples per chunk: work arrays of one chunk (:meth:`sample_bytes` each) within
        ``memory_budget`` and ``CACHE_BYTES``. ``num_threads()`` chunks are computed at a time, each
        thread keeping its work arrays between chunks."""
        return max(1, int(min(memory_budget, CACHE_BYTES) // self.sample_bytes(n_networks)))

    def work_bytes(self, n_networks: int, n_samples: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
        """Peak bytes of one evaluation's work arrays: per thread, one chunk and its own gradient sum."""
        chunk = self.sample_bytes(n_networks) * min(n_samples, self.chunk_size(n_networks, memory_budget))
        gradient = np.dtype(self.dtype).itemsize * n_networks * self.n_params
        return backend.num_threads() * (chunk + gradient)

    def evaluate(self, theta: np.ndarray, x: np.ndarray, y: np.ndarray, *, grad: bool = True,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Evaluation:
        """Loss, accuracy and gradient of all R networks on the full data set (x, y).

        Samples are processed in chunks of :meth:`chunk_size`, ``CHUNKS_PER_TASK`` consecutive
        chunks per task, tasks on ``num_threads()`` threads and summed in order: the result depends
        on the split only by round-off, and not on the number of threads. Inputs are trusted here
        (see :meth:`check_data`).
        """
        n_samples, n_nets = x.shape[0], theta.shape[0]
        x = x.astype(self.dtype, copy=False)
        params = self.engine_params(theta)
        step = self.chunk_size(n_nets, memory_budget)

        def task(start: int, stop: int):
            loss, correct = np.zeros(n_nets), np.zeros(n_nets, dtype=np.int64)
            grads = [np.zeros_like(p) for p in params] if grad else None
            for first in range(start, stop, step):
                last = min(first + step, stop)
                logits, saved = self.forward(params, x[first:last])
                chunk_loss, chunk_correct, delta = backend.softmax_cross_entropy(
                    logits, params[-1], y[first:last], 1.0 / n_samples)
                loss += chunk_loss
                correct += chunk_correct
                if grad:
                    self._backward(params, saved, delta, grads)
            return loss, correct, grads

        loss, correct = np.zeros(n_nets), np.zeros(n_nets, dtype=np.int64)
        grads = [np.zeros_like(p) for p in params] if grad else None
        for task_loss, task_correct, task_grads in backend.map_chunks(task, n_samples,
                                                                      step * CHUNKS_PER_TASK):
            loss += task_loss
            correct += task_correct
            for total, part in zip(grads or (), task_grads or ()):
                total += part
        loss /= n_samples
        gradient = self.flat_gradient(grads) if grad else None
        if self.l2 > 0:
            mask = self.weight_mask()
            weights = theta[:, mask]
            loss += 0.5 * self.l2 * np.sum(weights * weights, axis=1)
            if grad:
                gradient[:, mask] += self.l2 * weights
        return Evaluation(loss, correct / max(1, n_samples), gradient)

    def accuracy(self, theta: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> np.ndarray:
        """Fraction of samples of (x, y) that each network classifies correctly, (R,)."""
        n_nets = theta.shape[0]
        x = x.astype(self.dtype, copy=False)
        params = self.engine_params(theta)

        def chunk(start: int, stop: int) -> np.ndarray:
            logits, _ = self.forward(params, x[start:stop])
            return backend.count_correct(logits, params[-1], y[start:stop])

        correct = np.zeros(n_nets, dtype=np.int64)
        for part in backend.map_chunks(chunk, x.shape[0], self.chunk_size(n_nets, memory_budget)):
            correct += part
        return correct / max(1, x.shape[0])

    def fused_training(self, n_samples: int, n_test: int) -> bool:
        """CNNs have no whole-network training kernel: :func:`gdchaos.engine.train.train_to_target` steps them."""
        return False

    # --------------------------------------------------------------- kernels
    def engine_params(self, theta: np.ndarray) -> list[np.ndarray]:
        """Parameters in the engine's channels-last form: conv K (R, k*k*C_in, C_out) with rows in
        (row, column, channel) order, b (R, C_out), ..., linear W (R, F, n_classes) with rows in
        (row, column, channel) order, b (R, n_classes)."""
        tensors = self.unflatten(theta)
        out = []
        for weight, bias in zip(tensors[0:-2:2], tensors[1:-2:2]):
            out += [weight.transpose(0, 3, 4, 2, 1).reshape(len(weight), -1, weight.shape[1]), bias]
        out += [_reorder_rows(tensors[-2], self.flat_shape, (0, 2, 3, 1)), tensors[-1]]
        return [np.ascontiguousarray(p) for p in out]

    def flat_gradient(self, grads: list[np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`engine_params` for gradients: back to the flat layout (R, P)."""
        tensors = []
        for block, weight, bias in zip(self.convs, grads[0:-2:2], grads[1:-2:2]):
            k = block.conv.kernel
            weight = weight.reshape(len(weight), k, k, block.shape_in[0], -1).transpose(0, 4, 3, 1, 2)
            tensors += [weight, bias]
        c, h, w = self.flat_shape
        tensors += [_reorder_rows(grads[-2], (h, w, c), (0, 3, 1, 2)), grads[-1]]
        return self.flatten(tensors)

    def forward(self, params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, list]:
        """Logits (R, n, n_classes) before the last bias, and what the backward pass needs.

        Feature maps are channels-last (R', n, H, W, C), R' = 1 while they do not depend on the
        parameters (the input and blocks before the first conv), R afterwards. The first conv sees
        the shared input and is computed directly for all networks at once; later convs are patches
        (im2col) times the kernel matrix, one BLAS product per network. Large temporaries are this
        thread's reusable scratch arrays (valid until its next chunk).
        """
        n, dtype = x.shape[0], x.dtype
        c, h, w = self.input_shape
        a = x.reshape(1, n, c, h, w).transpose(0, 1, 3, 4, 2)
        kernels, biases = params[0::2], params[1::2]
        n_nets = kernels[0].shape[0]
        saved, conv = [], 0
        for index, block in enumerate(self.blocks):
            maps, layer, act, pool = a.shape[0], block.conv, block.activation, block.pool
            (c_in, h_in, w_in), (c_mid, h_mid, w_mid) = block.shape_in, block.shape_mid
            shape = (maps if layer is None else n_nets, n, h_mid // pool, w_mid // pool, c_mid)
            out = backend.scratch(f"out{index}", shape, dtype)
            arg = backend.scratch(f"arg{index}", shape, np.uint8)
            inputs = None  # what the backward pass of a conv needs: its patches, or the shared input
            if layer is None:
                a, arg = backend.pool_activate(a, np.zeros((maps, c_in), dtype), act, pool, out, arg)
            elif conv == 0:  # the first conv reads the shared input: direct, all networks at once
                inputs = a[0]
                a, arg = backend.input_conv_pool_activate(inputs, kernels[conv], biases[conv],
                                                          layer.kernel, layer.padding, act, pool,
                                                          out, arg)
            else:
                rows, depth = n * h_mid * w_mid, layer.kernel ** 2 * c_in
                inputs = backend.im2col(a.reshape(maps * n, h_in, w_in, c_in), layer.kernel,
                                        layer.padding, out=backend.scratch(
                                            f"cols{index}", (maps * n, h_mid, w_mid, depth), dtype))
                inputs = inputs.reshape(maps, rows, depth)
                z = backend.matmul(inputs, kernels[conv],
                                   out=backend.scratch(f"z{index}", (maps, rows, c_mid), dtype))
                a, arg = backend.pool_activate(z.reshape(maps, n, h_mid, w_mid, c_mid), biases[conv],
                                               act, pool, out, arg)
            conv += layer is not None
            saved.append((inputs, a, arg))
        features = a.reshape(a.shape[0], n, -1)
        saved.append(features)
        if not self.convs:  # no conv: the shared input goes straight to the last layer
            return _split(backend.matmul(features[0], _side_by_side(kernels[-1])), n_nets), saved
        return backend.matmul(features, kernels[-1]), saved

    def _backward(self, params: list[np.ndarray], saved: list, delta: np.ndarray,
                  grads: list[np.ndarray]) -> None:
        """Add the gradients of one chunk (engine form) into ``grads``; delta = dL/dlogits (R, n, C).

        Reverse mode through the blocks down to the first conv (nothing below has parameters):
        dZ = act'(P) * dL/dP at each window's first maximum (0 elsewhere), db = sum dZ,
        dK = cols^T @ dZ, dL/dA = col2im(dZ @ K^T); the first conv gathers dK from its input.
        """
        n_nets, n, _ = delta.shape
        kernels = params[0::2]
        grad_k, grad_b = grads[0::2], grads[1::2]
        features = saved[-1]
        grad_b[-1] += delta.sum(axis=1)
        if not self.convs:
            grad_k[-1] += _unside(backend.matmul(features[0].T, _join(delta)), n_nets)
            return
        grad_k[-1] += backend.matmul(features.transpose(0, 2, 1), delta)
        g = backend.matmul(delta, kernels[-1].transpose(0, 2, 1),
                           out=backend.scratch("grad_features", (n_nets, *features.shape[1:]), delta.dtype))
        conv = len(kernels) - 1
        for index in reversed(range(len(self.blocks))):
            block, (inputs, out, arg) = self.blocks[index], saved[index]
            (c_in, h_in, w_in), (c_mid, h_mid, w_mid) = block.shape_in, block.shape_mid
            dz_shape = (n_nets, n, h_mid, w_mid, c_mid)
            if block.conv is None:
                dz = backend.scratch(f"dz{index}", dz_shape, g.dtype)
                g = backend.pool_activate_backward(g.reshape(out.shape), out, arg, block.activation,
                                                   block.pool, h_mid, w_mid, out_grad=dz)
                continue
            conv -= 1
            k, p = block.conv.kernel, block.conv.padding
            if conv == 0:
                backend.input_conv_backward(g.reshape(out.shape), out, arg, inputs, block.activation,
                                            block.pool, k, p, grad_k[0], grad_b[0])
                return
            dz = backend.pool_activate_backward(
                g.reshape(out.shape), out, arg, block.activation, block.pool, h_mid, w_mid,
                bias_grad=grad_b[conv], out_grad=backend.scratch(f"dz{index}", dz_shape, g.dtype))
            dz = dz.reshape(n_nets, -1, c_mid)
            grad_k[conv] += backend.matmul(inputs.transpose(0, 2, 1), dz)
            dcols = backend.matmul(dz, kernels[conv].transpose(0, 2, 1), out=inputs)  # patches done
            g = backend.col2im(dcols.reshape(n_nets * n, h_mid, w_mid, -1), k, p, h_in, w_in,
                               out=backend.scratch(f"grad{index}", (n_nets * n, h_in, w_in, c_in),
                                                   g.dtype))


def paper_cnn(**options: Any) -> CNN:
    """The paper's Fig. 12 network (9,098 parameters): conv 1->8 (3x3, pad 1) + ReLU + maxpool 2,
    conv 8->16 (3x3, pad 1) + ReLU + maxpool 2, linear 784->10; ``options`` (init_std, l2, dtype)
    are passed to :class:`CNN`."""
    model = CNN(input_shape=(1, 28, 28), layers=PAPER_LAYERS, n_classes=10, **options)
    assert model.n_params == PAPER_N_PARAMS, model.n_params
    return model


def _reorder_rows(weight: np.ndarray, shape: Shape, order: tuple[int, int, int, int]) -> np.ndarray:
    """Permute the F = a*b*c rows of a last-layer weight (R, F, O), seen as (R, a, b, c, O)."""
    n_nets, _, n_out = weight.shape
    return weight.reshape(n_nets, *shape, n_out).transpose(*order, 4).reshape(n_nets, -1, n_out)


def _side_by_side(kernel: np.ndarray) -> np.ndarray:
    """K_cat (K, R*C) = [K^(1) ... K^(R)] from per-network matrices (R, K, C)."""
    n_nets, rows, cols = kernel.shape
    return np.ascontiguousarray(kernel.transpose(1, 0, 2)).reshape(rows, n_nets * cols)


def _unside(product: np.ndarray, n_nets: int) -> np.ndarray:
    """Inverse of :func:`_side_by_side`: (K, R*C) -> (R, K, C)."""
    return product.reshape(product.shape[0], n_nets, -1).transpose(1, 0, 2)


def _split(z_cat: np.ndarray, n_nets: int) -> np.ndarray:
    """(M, R*C) -> (R, M, C), a contiguous copy."""
    return np.ascontiguousarray(z_cat.reshape(z_cat.shape[0], n_nets, -1).transpose(1, 0, 2))


def _join(z: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_split`: (R, M, C) -> (M, R*C)."""
    return np.ascontiguousarray(z.transpose(1, 0, 2)).reshape(z.shape[1], -1)


def group_blocks(layers: tuple[Layer, ...], shape: Shape) -> tuple[Block, ...]:
    """Group layers into blocks (conv, then an activation, then a maxpool, each optional) and
    attach shapes; raise GdchaosError when a feature map would vanish."""
    blocks: list[Block] = []
    for i, layer in enumerate(layers):
        c, h, w = shape
        last = blocks[-1] if blocks else None
        if layer.type == "conv":
            k, p = layer.kernel, layer.padding
            if h + 2 * p < k or w + 2 * p < k:
                raise GdchaosError(f"model.layers[{i}].kernel: {k} is larger than the padded input "
                                   f"{h + 2 * p}x{w + 2 * p}; allowed: <= {min(h, w) + 2 * p}")
            out = (layer.channels, h + 2 * p - k + 1, w + 2 * p - k + 1)
            blocks.append(Block(layer, None, 1, shape, out, out))
        elif layer.type == "maxpool":
            if layer.size > min(h, w):
                raise GdchaosError(f"model.layers[{i}].size: {layer.size} is larger than the input "
                                   f"{h}x{w}; allowed: <= {min(h, w)}")
            out = (c, h // layer.size, w // layer.size)
            if last is not None and last.pool == 1:
                blocks[-1] = last._replace(pool=layer.size, shape_out=out)
            else:
                blocks.append(Block(None, None, layer.size, shape, shape, out))
        else:  # an activation
            out = shape
            if last is not None and last.activation is None and last.pool == 1:
                blocks[-1] = last._replace(activation=layer.type)
            else:
                blocks.append(Block(None, layer.type, 1, shape, shape, shape))
        shape = out
    return tuple(blocks)


def _parse_layer(spec: Layer | Mapping[str, Any], index: int) -> Layer:
    """Validate one layer spec and fill in its defaults (padding 0, pool size 2)."""
    if isinstance(spec, Layer):
        spec = spec.to_dict()
    where = f"model.layers[{index}]"
    if not isinstance(spec, Mapping):
        fail(where, "a table with a 'type' key", spec)
    kind = spec.get("type")
    if kind not in LAYER_TYPES:
        fail(f"{where}.type", "one of " + ", ".join(LAYER_TYPES), kind)
    check_keys(where, spec, ("type", *_KEYS.get(kind, ())))
    if kind == "conv":
        for key in ("channels", "kernel"):
            if key not in spec:
                raise GdchaosError(f"{where}.{key}: required for a conv layer (an integer >= 1)")
        channels = check_int(f"{where}.channels", spec["channels"], 1)
        kernel = check_int(f"{where}.kernel", spec["kernel"], 1)
        padding = check_int(f"{where}.padding", spec.get("padding", 0), 0, kernel - 1)
        return Layer("conv", channels=channels, kernel=kernel, padding=padding)
    if kind == "maxpool":
        return Layer("maxpool", size=check_int(f"{where}.size", spec.get("size", 2), 2, MAX_POOL_SIZE))
    return Layer(kind)
