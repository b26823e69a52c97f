"""What every kind of network shares: parameters of R networks in one array, and the flat layout.

All R networks of a batch share one architecture and are stored as one array ``theta`` of shape
(R, P), one row per network, its tensors W_1, b_1, ..., W_L, b_L one after another (each kind
documents its shapes). :class:`Network` derives everything that follows from the layout: P, the
weight mask, views per tensor, initialisation and the data check. A kind (:class:`~gdchaos.nn.MLP`,
:class:`~gdchaos.nn.CNN`) adds ``layout``, ``n_features``, ``n_classes``, ``init_std``, ``l2``,
``dtype`` and the evaluation methods (``evaluate``, ``accuracy``, ``chunk_size``, ``fused_training``).

Loss of every kind (Eq. 2 of the paper plus the optional L2 term of Fig. 11)::

    L(theta) = (1/N) sum_n [ log sum_c exp(z_nc) - z_{n, y_n} ] + (l2 / 2) sum_l ||W_l||^2
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gdchaos.checks import check_choice, check_number, check_positive
from gdchaos.errors import GdchaosError

DTYPES = ("float64", "float32")
DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of activations per evaluation before samples are split


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


class Network:
    """The flat layout of one network and what follows from it (base of every network kind)."""

    n_features: int
    n_classes: int
    init_std: float
    l2: float
    dtype: str

    def layout(self) -> list[Tensor]:
        """The flat layout of one network: (name, shape, offset) of W_1, b_1, ..., W_L, b_L."""
        raise NotImplementedError

    def check_common(self) -> None:
        """Validate the fields every kind has (l2, init_std, dtype); GdchaosError naming the first bad one."""
        check_number("model.l2", self.l2, 0)
        check_positive("model.init_std", self.init_std)
        check_choice("model.dtype", self.dtype, DTYPES)

    @property
    def n_params(self) -> int:
        """Number of trainable parameters P of one network."""
        last = self.layout()[-1]
        return last.offset + last.size

    def tensor_bounds(self) -> np.ndarray:
        """Offsets where each parameter tensor starts, then P: (n_tensors + 1,)."""
        layout = self.layout()
        return np.array([t.offset for t in layout] + [layout[-1].offset + layout[-1].size])

    def weight_mask(self) -> np.ndarray:
        """Boolean (P,) mask, True on weights and False on biases."""
        mask = np.zeros(self.n_params, dtype=bool)
        for tensor in self.layout():
            if tensor.name.startswith("W"):
                mask[tensor.offset:tensor.offset + tensor.size] = True
        return mask

    def networks_per_call(self, n_samples: int) -> int:
        """Networks an evaluation on ``n_samples`` samples should hold for a near-lowest cost per network
        (fewer leave the machine partly idle); the planner puts at least this many references in a unit
        where it can, so that the tau phase trains them together. 1: no gain from batching."""
        return 1

    def check_theta(self, theta: np.ndarray, name: str = "theta") -> None:
        """GdchaosError unless ``theta`` is (R, P) for this network's P."""
        if np.ndim(theta) != 2 or np.shape(theta)[1] != self.n_params:
            raise GdchaosError(f"{name}: must be of shape (R, {self.n_params}); got {np.shape(theta)}")

    def unflatten(self, theta: np.ndarray) -> list[np.ndarray]:
        """Views of ``theta`` (R, P) as [W_1 (R, *shape), b_1 (R, *shape), ...]; writes go through."""
        self.check_theta(theta)
        rows = theta.shape[0]
        return [theta[:, t.offset:t.offset + t.size].reshape((rows, *t.shape)) for t in self.layout()]

    def flatten(self, tensors: list[np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`unflatten`: concatenate per-tensor arrays (R, *shape) into (R, P)."""
        rows = tensors[0].shape[0]
        return np.concatenate([np.reshape(t, (rows, -1)) for t in tensors], axis=1).astype(self.dtype)

    def init(self, rng: np.random.Generator, n_networks: int = 1) -> np.ndarray:
        """theta (R, P): weights ~ N(0, init_std^2), biases = 0, drawn in layout order."""
        theta = np.zeros((n_networks, self.n_params), dtype=self.dtype)
        mask = self.weight_mask()
        theta[:, mask] = rng.normal(0.0, self.init_std, size=(n_networks, int(mask.sum())))
        return theta

    def check_data(self, x: np.ndarray, y: np.ndarray) -> None:
        """GdchaosError unless x (N, n_features) is finite and y (N,) holds integer labels in [0, n_classes)."""
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise GdchaosError(f"data: inputs must have shape (N, {self.n_features}); got {x.shape}")
        if y.shape != (x.shape[0],):
            raise GdchaosError(f"data: labels must have shape ({x.shape[0]},); got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise GdchaosError(f"data: labels must be integers; got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= self.n_classes):
            raise GdchaosError(
                f"data: labels must lie in [0, {self.n_classes - 1}]; got [{y.min()}, {y.max()}]")
        if not np.all(np.isfinite(x)):
            raise GdchaosError("data: inputs contain NaN or inf")
