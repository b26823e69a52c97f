"""Exact Hessian-vector products of the training loss and the sharpness (top Hessian eigenvalue).

H v is computed by Pearlmutter's R-operator, R{f} = d/dt f(theta + t v)|_{t=0}, applied to the
forward and backward pass of the model (forward-over-reverse), for all R networks of a batch at
once: R{grad L} = H v. :func:`hessian_operator` picks the operator of the model's type
(:class:`HessianOperator` for :class:`~gdchaos.model.MLP`, :class:`CNNHessianOperator` for
:class:`~gdchaos.cnn.CNN`). The sharpness is the largest algebraic eigenvalue of H, found by power
iteration on H v (paper Appendix C; edge of stability at 2/eta). See docs/sharpness.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import singledispatch
from typing import Callable, Union

import numpy as np

from gdchaos import backend
from gdchaos.cnn import CHUNKS_PER_TASK, CNN
from gdchaos.errors import GdchaosError
from gdchaos.model import DEFAULT_MEMORY_BUDGET, MLP, _first_layer_matrix

Model = Union[MLP, CNN]


@dataclass
class SharpnessResult:
    """Top Hessian eigenvalue of every network of a batch."""

    eigenvalue: np.ndarray  # (R,) largest algebraic eigenvalue; NaN for non-finite networks
    vector: np.ndarray  # (R, P) unit-norm eigenvector estimate, the warm start of the next call
    iterations: np.ndarray  # (R,) int, Hessian-vector products spent on each network
    converged: np.ndarray  # (R,) bool, relative change of the Rayleigh quotient reached ``tol``


@dataclass
class _Linearisation:
    """The theta-only part of the pass on one chunk: what every R-pass at this theta reuses."""

    hidden: list[np.ndarray]  # A_l (R, n, h_l), l = 1..L-1
    logits: np.ndarray  # z_L = A_{L-1} W_L + b_L (R, n, C)
    deltas: list[np.ndarray]  # delta_l = dL/dz_l (R, n, n_l), l = 2..L
    grads_a: list[np.ndarray]  # G_l = dL/dA_l = delta_{l+1} W_{l+1}^T (R, n, h_l), l = 1..L-1

    def select(self, rows: np.ndarray) -> _Linearisation:
        """The same for the networks ``rows`` only."""
        return _Linearisation([a[rows] for a in self.hidden], self.logits[rows],
                              [d[rows] for d in self.deltas], [g[rows] for g in self.grads_a])


class HessianOperator:
    """v -> H v for the networks theta (R, P) of ``model`` on the data (x, y).

    The parts of the pass that do not depend on v (activations, logits, dL/dz and dL/dA) are
    computed once per chunk of samples and kept when they fit in ``memory_budget`` bytes, so that
    each product then costs about one gradient evaluation; otherwise they are recomputed per call.
    """

    def __init__(self, model: MLP, theta: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> None:
        _check_theta(model, theta)
        self.model, self.theta = model, theta
        self._x, self._y = x.astype(model.dtype, copy=False), y
        self._scale = 1.0 / x.shape[0]
        self._sparse = backend.sparse_rows(self._x)
        # about twice evaluate's arrays per chunk
        step = model._chunk_step(2 * theta.shape[0], memory_budget, self._sparse)
        self._chunks = [slice(start, start + step) for start in range(0, x.shape[0], step)]
        widths = model.sizes[1:]
        kept = np.dtype(model.dtype).itemsize * theta.shape[0] * x.shape[0] * (
            3 * sum(widths[:-1]) + 2 * widths[-1])
        self._kept = None
        if kept <= memory_budget:
            params = model.unflatten(theta)
            self._kept = [self._linearise(params, chunk) for chunk in self._chunks]

    def __call__(self, v: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """H_r v_r for the networks ``rows`` (indices into theta; all by default), shape of ``v``.

        Forward-over-reverse (R-operator), layer l = 1..L with a_0 = x, R{a_0} = 0:
            R{z_l} = R{a_{l-1}} W_l + a_{l-1} V_l + c_l,   R{a_l} = act'(z_l) R{z_l};
            R{delta_L} = (1/N) R{p},  R{p} = p (R{z_L} - sum_c p_c R{z_L,c});
            R{delta_{l-1}} = act'(z_{l-1}) (R{delta_l} W_l^T + delta_l V_l^T)
                             + act''(z_{l-1}) R{z_{l-1}} (delta_l W_l^T);
            (H v)_{W_l} = R{a_{l-1}}^T delta_l + a_{l-1}^T R{delta_l} + l2 V_l,
            (H v)_{b_l} = sum_n R{delta_l}.
        """
        theta = self.theta if rows is None else self.theta[rows]
        if v.shape != theta.shape:
            raise GdchaosError(f"v: expected shape {theta.shape} like theta, got {v.shape}")
        params = self.model.unflatten(theta)
        direction = self.model.unflatten(v.astype(self.model.dtype, copy=False))
        product = np.zeros_like(theta)
        out = self.model.unflatten(product)
        for index, chunk in enumerate(self._chunks):
            if self._kept is None:
                state = self._linearise(params, chunk)
            else:
                state = self._kept[index] if rows is None else self._kept[index].select(rows)
            self._r_pass(params, direction, state, chunk, out)
        if self.model.l2 > 0:
            for hv_w, v_w in zip(out[0::2], direction[0::2]):
                hv_w += self.model.l2 * v_w
        return product

    def _linearise(self, params: list[np.ndarray], chunk: slice) -> _Linearisation:
        """Forward pass and dL/dz, dL/dA (without the weight gradients) on one chunk."""
        model = self.model
        weights, biases = params[0::2], params[1::2]
        stop = min(chunk.stop, self._x.shape[0])
        outputs = model._logits(weights, biases, _first_layer_matrix(weights[0]), self._x,
                                chunk.start, stop, self._sparse)
        hidden, logits = outputs[:-1], outputs[-1]
        _, _, delta = backend.softmax_cross_entropy(logits, biases[-1], self._y[chunk], self._scale)
        deltas, grads_a = [delta], []
        for layer in range(model.n_layers - 1, 0, -1):
            grads_a.insert(0, backend.batched_matmul(deltas[0], weights[layer].transpose(0, 2, 1)))
            if layer > 1:
                deltas.insert(0, backend.activation_backward(grads_a[0], hidden[layer - 1],
                                                             model.activation))
        return _Linearisation(hidden, logits, deltas, grads_a)

    def _r_pass(self, params, direction, state: _Linearisation, chunk: slice, out) -> None:
        """R-forward and R-backward pass on one chunk; its share of H v is added into ``out``."""
        activation, n_layers = self.model.activation, self.model.n_layers
        weights, r_weights, r_biases = params[0::2], direction[0::2], direction[1::2]
        start, stop = chunk.start, min(chunk.stop, self._x.shape[0])
        first = _first_layer_matrix(r_weights[0])
        if self._sparse is None:
            r_z = backend.input_matmul(self._x[start:stop], first)
        else:
            r_z = backend.sparse_matmul(self._sparse, start, stop, first)
        r_hidden = [backend.activation_rop_split(r_z, state.hidden[0], r_biases[0], activation)]
        for layer in range(1, n_layers):
            rz = backend.batched_matmul(r_hidden[-1], weights[layer])
            rz += backend.batched_matmul(state.hidden[layer - 1], r_weights[layer])
            if layer < n_layers - 1:
                r_hidden.append(backend.activation_rop_(rz, state.hidden[layer], r_biases[layer],
                                                        activation))
        r_delta = backend.softmax_rop_(state.logits, rz, r_biases[-1], self._scale)
        out_w, out_b = out[0::2], out[1::2]
        for layer in range(n_layers - 1, 0, -1):
            below, r_below, delta = state.hidden[layer - 1], r_hidden[layer - 1], state.deltas[layer - 1]
            out_w[layer] += backend.batched_matmul(below.transpose(0, 2, 1), r_delta)
            out_w[layer] += backend.batched_matmul(r_below.transpose(0, 2, 1), delta)
            out_b[layer] += r_delta.sum(axis=1)
            r_grad_a = backend.batched_matmul(r_delta, weights[layer].transpose(0, 2, 1))
            r_grad_a += backend.batched_matmul(delta, r_weights[layer].transpose(0, 2, 1))
            r_delta = backend.activation_backward_rop(state.grads_a[layer - 1], r_grad_a, below,
                                                      r_below, activation, concatenate=layer == 1)
        n_nets, n_in, width = out_w[0].shape
        if self._sparse is None:
            r_grad_first = backend.input_matmul_transposed(self._x[start:stop], r_delta)
        else:
            r_grad_first = backend.sparse_transposed_matmul(self._sparse, start, stop, r_delta)
        out_w[0] += r_grad_first.reshape(
            n_in, n_nets, width).transpose(1, 0, 2)
        out_b[0] += r_delta.sum(axis=0).reshape(n_nets, width)


@dataclass
class _ConvLinearisation:
    """The theta-only part of the CNN pass on one chunk of n samples, from the first conv block on
    (blocks before it have no parameters and their R-op is 0)."""

    inputs: np.ndarray | None  # the first conv's input (n, H, W, C), shared by all networks
    outs: list[np.ndarray]  # P_i (R, n, H_i, W_i, C_i), outputs of the blocks first..last
    args: list[np.ndarray]  # their window positions of the first maxima (uint8)
    grads: list[np.ndarray]  # G_i = dL/dP_i
    features: np.ndarray  # the last layer's input (R, n, F); (1, n, F), shared, without conv
    logits: np.ndarray  # z = F W + b (R, n, C), bias included
    delta: np.ndarray  # dL/dz (R, n, C)

    def select(self, rows: np.ndarray) -> _ConvLinearisation:
        """The same for the networks ``rows`` only."""
        outs = [a[rows] for a in self.outs]
        # the features are the last block's output, or shared by all networks without conv
        features = outs[-1].reshape(*outs[-1].shape[:2], -1) if outs else self.features
        return _ConvLinearisation(self.inputs, outs, [a[rows] for a in self.args],
                                  [g[rows] for g in self.grads], features, self.logits[rows],
                                  self.delta[rows])

    def keep(self, data: np.ndarray) -> _ConvLinearisation:
        """Copies that outlive the thread's work arrays; a shared array that is a view of the
        input ``data`` (the first conv's input when the network starts with it) is not copied."""
        def own(a: np.ndarray) -> np.ndarray:
            return a if np.may_share_memory(a, data) else a.copy()

        outs = [a.copy() for a in self.outs]
        features = outs[-1].reshape(*outs[-1].shape[:2], -1) if outs else own(self.features)
        return _ConvLinearisation(None if self.inputs is None else own(self.inputs), outs,
                                  [a.copy() for a in self.args], [g.copy() for g in self.grads],
                                  features, self.logits.copy(), self.delta.copy())


class CNNHessianOperator:
    """v -> H v for the networks theta (R, P) of a :class:`~gdchaos.cnn.CNN` on the data (x, y).

    Same interface and conventions as :class:`HessianOperator`: the theta-only part (block outputs,
    window positions of the maxima, dL/dP, logits, dL/dz) is computed once per chunk of samples and
    kept when it fits in ``memory_budget`` bytes, otherwise recomputed at every call. Chunks run on
    the CNN engine's worker threads (``backend.map_chunks``), ``CHUNKS_PER_TASK`` per task, and tasks
    are summed in order: results do not depend on the number of threads.
    """

    def __init__(self, model: CNN, theta: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> None:
        _check_theta(model, theta)
        self.model, self.theta = model, theta
        self._x, self._y = x.astype(model.dtype, copy=False), y
        self._scale = 1.0 / x.shape[0]
        blocks = model._blocks
        self._first = next((i for i, b in enumerate(blocks) if b.conv is not None), len(blocks))
        # about twice the work arrays of an evaluation per chunk
        self._step = model.chunk_size(2 * theta.shape[0], memory_budget)
        self._kept = None
        if self.kept_bytes(theta.shape[0], x.shape[0]) <= memory_budget:
            params = model._kernels(theta)
            self._kept = list(backend.map_chunks(
                lambda start, stop: self._linearise(params, start, stop).keep(self._x),
                x.shape[0], self._step))

    def kept_bytes(self, n_nets: int, n_samples: int) -> int:
        """Bytes of the theta-only arrays of ``n_nets`` networks on ``n_samples`` samples."""
        model, blocks = self.model, self.model._blocks
        maps = sum(int(np.prod(block.shape_out)) for block in blocks[self._first:])
        # the first conv's input, or without conv the features: a copy unless they are the data
        shared = 0 if self._first == 0 or not blocks else int(np.prod(
            blocks[self._first].shape_in if self._first < len(blocks) else model._flat_shape))
        floats = n_nets * (2 * maps + 2 * model.n_classes) + shared
        return n_samples * (np.dtype(model.dtype).itemsize * floats + n_nets * maps)

    def __call__(self, v: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """H_r v_r for the networks ``rows`` (indices into theta; all by default), shape of ``v``.

        R-operator through the blocks (channels-last, engine layout; V, c the direction's kernel
        and bias, R{A_0} = 0 for the input and every block before the first conv):
            conv       R{Z} = im2col(R{A}) K + im2col(A) V + c   (the first conv: im2col(X) V + c,
                       computed at the maxima only)
            act, pool  R{P} = act'(P) R{Z} at the forward pass's first maximum of each window
            linear     R{z} = R{F} W + F V + c,   R{delta} = (1/N) p (R{z} - sum_c p_c R{z}_c)
            backward   R{G_F} = R{delta} W^T + delta V^T;  per block, at the maxima (0 elsewhere)
                       R{dZ} = act'(P) R{G} + k(P) R{P} G   (k = act''/act' from the output)
                       R{G_in} = col2im(R{dZ} K^T + dZ V^T)
            result     (Hv)_K = im2col(A)^T R{dZ} + im2col(R{A})^T dZ,  (Hv)_b = sum R{dZ},
                       (Hv)_W = F^T R{delta} + R{F}^T delta, plus l2 V on the weights.
        """
        model = self.model
        theta = self.theta if rows is None else self.theta[rows]
        if v.shape != theta.shape:
            raise GdchaosError(f"v: expected shape {theta.shape} like theta, got {v.shape}")
        params = model._kernels(theta)
        direction = model._kernels(v.astype(model.dtype, copy=False))
        step = self._step

        def task(start: int, stop: int) -> list[np.ndarray]:
            product = [np.zeros_like(p) for p in params]
            for first in range(start, stop, step):
                last = min(first + step, stop)
                if self._kept is None:
                    state = self._linearise(params, first, last)
                else:
                    state = self._kept[first // step]
                    state = state if rows is None else state.select(rows)
                self._r_pass(params, direction, state, product)
            return product

        total = [np.zeros_like(p) for p in params]
        for part in backend.map_chunks(task, self._x.shape[0], step * CHUNKS_PER_TASK):
            for into, value in zip(total, part):
                into += value
        product = model._layout_gradient(total)
        if model.l2 > 0:
            mask = model.weight_mask()
            product[:, mask] += model.l2 * v[:, mask]
        return product

    def _linearise(self, params: list[np.ndarray], start: int, stop: int) -> _ConvLinearisation:
        """Forward pass, softmax and the backward pass for dL/dP (no weight gradients) on samples
        start..stop-1; large arrays are this thread's work arrays (valid until its next chunk)."""
        model, blocks, first = self.model, self.model._blocks, self._first
        logits, saved = model._forward(params, self._x[start:stop])
        _, _, delta = backend.softmax_cross_entropy(logits, params[-1], self._y[start:stop],
                                                    self._scale)
        features = saved[-1]
        if first == len(blocks):
            return _ConvLinearisation(None, [], [], [], features, logits, delta)
        kernels = params[0::2]
        n_nets, n, _ = delta.shape
        dtype, scratch = delta.dtype, backend.scratch
        g = backend.matmul(delta, kernels[-1].transpose(0, 2, 1),
                           out=scratch("lin_grad_features", features.shape, dtype))
        grads, conv = [], len(kernels) - 1
        for index in range(len(blocks) - 1, first - 1, -1):
            block, (_, out, arg) = blocks[index], saved[index]
            g = g.reshape(out.shape)
            grads.append(g)
            if index == first:
                break
            (c_in, h_in, w_in), (c_mid, h_mid, w_mid) = block.shape_in, block.shape_mid
            g = backend.pool_activate_backward(
                g, out, arg, block.activation, block.pool, h_mid, w_mid,
                out_grad=scratch(f"lin_dz{index}", (n_nets, n, h_mid, w_mid, c_mid), dtype))
            if block.conv is None:
                continue
            conv -= 1
            k, p = block.conv.kernel, block.conv.padding
            dcols = backend.matmul(g.reshape(n_nets, -1, c_mid), kernels[conv].transpose(0, 2, 1),
                                   out=scratch(f"lin_dcols{index}",
                                               (n_nets, n * h_mid * w_mid, k * k * c_in), dtype))
            g = backend.col2im(dcols.reshape(n_nets * n, h_mid, w_mid, -1), k, p, h_in, w_in,
                               out=scratch(f"lin_grad{index}", (n_nets * n, h_in, w_in, c_in), dtype))
        grads.reverse()
        return _ConvLinearisation(saved[first][0], [s[1] for s in saved[first:-1]],
                                  [s[2] for s in saved[first:-1]], grads, features, logits, delta)

    def _r_pass(self, params, direction, state: _ConvLinearisation, out) -> None:
        """R-forward and R-backward pass on one chunk; its share of H v (engine layout) is added
        into ``out``."""
        blocks, first = self.model._blocks, self._first
        kernels, r_kernels, r_biases = params[0::2], direction[0::2], direction[1::2]
        out_k, out_b = out[0::2], out[1::2]
        delta, matmul, scratch = state.delta, backend.matmul, backend.scratch
        n_nets, n, _ = delta.shape
        dtype = delta.dtype
        r_outs, patches, r_a, conv = [], {}, None, 0
        for index in range(first, len(blocks)):
            block, i = blocks[index], index - first
            p_out, arg = state.outs[i], state.args[i]
            (c_in, h_in, w_in), (c_mid, h_mid, w_mid) = block.shape_in, block.shape_mid
            r_out = scratch(f"r_out{index}", p_out.shape, dtype)
            layer = block.conv
            if layer is None:
                backend.pool_activate_rop(r_a, np.zeros((n_nets, c_mid), dtype), p_out, arg,
                                          block.activation, block.pool, r_out)
            elif conv == 0:
                backend.input_conv_pool_rop(state.inputs, r_kernels[0], r_biases[0], p_out, arg,
                                            layer.kernel, layer.padding, block.activation,
                                            block.pool, r_out)
            else:
                k, pad = layer.kernel, layer.padding
                rows, depth = n * h_mid * w_mid, k * k * c_in
                shape = (n_nets * n, h_mid, w_mid, depth)
                cols = backend.im2col(state.outs[i - 1].reshape(n_nets * n, h_in, w_in, c_in), k, pad,
                                      out=scratch(f"r_cols{index}", shape, dtype))
                r_cols = backend.im2col(r_a.reshape(n_nets * n, h_in, w_in, c_in), k, pad,
                                        out=scratch(f"r_rcols{index}", shape, dtype))
                cols, r_cols = cols.reshape(n_nets, rows, depth), r_cols.reshape(n_nets, rows, depth)
                r_z = matmul(r_cols, kernels[conv], out=scratch(f"r_z{index}", (n_nets, rows, c_mid), dtype))
                r_z += matmul(cols, r_kernels[conv], out=scratch("r_z_term", (n_nets, rows, c_mid), dtype))
                backend.pool_activate_rop(r_z.reshape(n_nets, n, h_mid, w_mid, c_mid), r_biases[conv],
                                          p_out, arg, block.activation, block.pool, r_out)
                patches[index] = cols, r_cols
            conv += layer is not None
            r_outs.append(r_out)
            r_a = r_out
        features = state.features
        r_logits = matmul(features, r_kernels[-1])  # (1, n, F) broadcasts without conv
        if r_a is not None:
            r_features = r_a.reshape(n_nets, n, -1)
            r_logits += matmul(r_features, kernels[-1])
        r_delta = backend.softmax_rop_(state.logits, r_logits, r_biases[-1], self._scale)
        out_b[-1] += r_delta.sum(axis=1)
        out_k[-1] += matmul(features.transpose(0, 2, 1), r_delta)
        if r_a is None:
            return
        out_k[-1] += matmul(r_features.transpose(0, 2, 1), delta)
        r_g = matmul(r_delta, kernels[-1].transpose(0, 2, 1),
                     out=scratch("r_grad_features", r_features.shape, dtype))
        r_g += matmul(delta, r_kernels[-1].transpose(0, 2, 1),
                      out=scratch("r_grad_term", r_features.shape, dtype))
        conv = len(kernels) - 1
        for index in range(len(blocks) - 1, first - 1, -1):
            block, i = blocks[index], index - first
            p_out, arg, grad = state.outs[i], state.args[i], state.grads[i]
            (c_in, h_in, w_in), (c_mid, h_mid, w_mid) = block.shape_in, block.shape_mid
            r_dp = backend.pool_backward_rop_(grad, r_g.reshape(p_out.shape), p_out, r_outs[i],
                                              block.activation)
            dz_shape = (n_nets, n, h_mid, w_mid, c_mid)
            if block.conv is None:
                r_g = backend.pool_activate_backward(r_dp, p_out, arg, None, block.pool, h_mid, w_mid,
                                                     out_grad=scratch(f"r_dz{index}", dz_shape, dtype))
                continue
            conv -= 1
            k, pad = block.conv.kernel, block.conv.padding
            if conv == 0:
                backend.input_conv_backward(r_dp, p_out, arg, state.inputs, None, block.pool, k, pad,
                                            out_k[0], out_b[0])
                return
            r_dz = backend.pool_activate_backward(
                r_dp, p_out, arg, None, block.pool, h_mid, w_mid, bias_grad=out_b[conv],
                out_grad=scratch(f"r_dz{index}", dz_shape, dtype)).reshape(n_nets, -1, c_mid)
            dz = backend.pool_activate_backward(
                grad, p_out, arg, block.activation, block.pool, h_mid, w_mid,
                out_grad=scratch(f"r_gdz{index}", dz_shape, dtype)).reshape(n_nets, -1, c_mid)
            cols, r_cols = patches[index]
            out_k[conv] += matmul(cols.transpose(0, 2, 1), r_dz)
            out_k[conv] += matmul(r_cols.transpose(0, 2, 1), dz)
            r_dcols = matmul(r_dz, kernels[conv].transpose(0, 2, 1), out=cols)  # patches done
            r_dcols += matmul(dz, r_kernels[conv].transpose(0, 2, 1), out=r_cols)
            r_g = backend.col2im(r_dcols.reshape(n_nets * n, h_mid, w_mid, -1), k, pad, h_in, w_in,
                                 out=scratch(f"r_grad{index}", (n_nets * n, h_in, w_in, c_in), dtype))


@singledispatch
def hessian_operator(model: Model, theta: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                     memory_budget: int = DEFAULT_MEMORY_BUDGET):
    """The operator v -> H v (called as ``operator(v, rows=None)``) of ``model``'s type at theta.

    :class:`HessianOperator` for an MLP, :class:`CNNHessianOperator` for a CNN; another model type
    registers its own with ``hessian_operator.register``.
    """
    raise GdchaosError(f"model: no Hessian-vector product for {type(model).__name__}")


hessian_operator.register(MLP, HessianOperator)
hessian_operator.register(CNN, CNNHessianOperator)


def hessian_vector_product(model: Model, theta: np.ndarray, v: np.ndarray, x: np.ndarray,
                           y: np.ndarray, *, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                           ) -> np.ndarray:
    """H_r v_r for every network r, (R, P): H_r = Hessian of the full loss L (L2 term included).

    Exact, by the R-operator (see :meth:`HessianOperator.__call__` for the equations); samples are
    split into chunks so that the arrays fit in ``memory_budget`` bytes.
    """
    return hessian_operator(model, theta, x, y, memory_budget=memory_budget)(v)


def top_eigenvalue(model: Model, theta: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                   v0: np.ndarray | None = None, tol: float = 1e-6, max_iter: int = 100,
                   subset: int | None = None, seed: int = 0,
                   memory_budget: int = DEFAULT_MEMORY_BUDGET) -> SharpnessResult:
    """Sharpness lambda_max(H_r) of every network r by power iteration on exact H v.

    Phase 1: v <- H v / ||H v|| until the Rayleigh quotient mu = v^T H v (||v|| = 1) changes by at
    most ``tol`` |mu| between two products; mu is the eigenvalue of largest magnitude. Where mu < 0,
    phase 2 iterates on H - mu I (spectrum shifted into [0, lambda_max - mu]) from the start vector
    made orthogonal to phase 1's vector, giving the largest algebraic eigenvalue lambda_max.
    Networks that converge are frozen; ``max_iter`` caps each phase. ``v0`` (R, P), e.g. the
    previous call's ``vector``, warm-starts; otherwise the start is Gaussian from ``seed``.
    ``subset`` uses that many training samples drawn without replacement from ``seed``.
    Networks with non-finite parameters get eigenvalue NaN, converged False, iterations 0.
    """
    _check_arguments(model, theta, x, y, v0, tol, max_iter, subset)
    subset_rng, start_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    if subset is not None:
        rows = np.sort(subset_rng.choice(x.shape[0], size=subset, replace=False))
        x, y = x[rows], y[rows]
    start = start_rng.standard_normal(theta.shape) if v0 is None else np.array(v0, dtype=np.float64)
    start /= np.linalg.norm(start, axis=1, keepdims=True)
    n_nets = theta.shape[0]
    result = SharpnessResult(np.full(n_nets, np.nan), start.copy(), np.zeros(n_nets, dtype=np.int64),
                             np.zeros(n_nets, dtype=bool))
    finite = np.flatnonzero(np.all(np.isfinite(theta), axis=1))
    if finite.size == 0:
        return result
    with np.errstate(all="ignore"):
        operator = hessian_operator(model, theta[finite], x, y, memory_budget=memory_budget)
        mu, vector, iterations, converged = _power_iteration(
            lambda live, v: operator(v, live), start[finite], np.zeros(finite.size), tol, max_iter)
        negative = np.flatnonzero(mu < 0)
        if negative.size:
            restart = start[finite[negative]]
            restart -= np.einsum("rp,rp->r", restart, vector[negative])[:, None] * vector[negative]
            restart /= np.linalg.norm(restart, axis=1, keepdims=True)
            top, vector[negative], more, converged[negative] = _power_iteration(
                lambda live, v: operator(v, negative[live]), restart, mu[negative], tol, max_iter)
            mu[negative] = top
            iterations[negative] += more
    result.eigenvalue[finite] = mu
    result.vector[finite] = vector
    result.iterations[finite] = iterations
    result.converged[finite] = converged
    return result


def _power_iteration(apply: Callable[[np.ndarray, np.ndarray], np.ndarray], start: np.ndarray,
                     shift: np.ndarray, tol: float, max_iter: int,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Power iteration on H - shift I for m networks: v_{k+1} = (H - shift) v_k / ||...||.

    ``apply(live, v)`` returns H v for the networks ``live`` (indices in 0..m-1). Returns the
    Rayleigh quotients v^T H v (m,), the vectors (m, P), the products spent (m,) and convergence
    (m,). A product that is not finite gives NaN; one that is zero ends the iteration (v is then an
    eigenvector of H with eigenvalue ``shift``).
    """
    m = start.shape[0]
    vector = start.copy()
    quotient = np.full(m, np.nan)
    iterations = np.zeros(m, dtype=np.int64)
    converged = np.zeros(m, dtype=bool)
    active = np.ones(m, dtype=bool)
    for _ in range(max_iter):
        live = np.flatnonzero(active)
        if live.size == 0:
            break
        v = vector[live]
        hv = apply(live, v)
        new = np.einsum("rp,rp->r", v, hv)
        hv -= shift[live, None] * v
        norm = np.linalg.norm(hv, axis=1)
        finite = np.isfinite(norm)
        moving = finite & (norm > 0)
        done = (np.abs(new - quotient[live]) <= tol * np.abs(new)) | (finite & (norm == 0))
        iterations[live] += 1
        quotient[live] = np.where(finite, new, np.nan)
        converged[live] = done & finite
        vector[live[moving]] = hv[moving] / norm[moving, None]
        active[live[done | ~finite]] = False
    return quotient, vector, iterations, converged


def _check_theta(model: Model, theta: np.ndarray) -> None:
    """Raise ``GdchaosError`` unless theta is (R, P) for the model's P."""
    if theta.ndim != 2 or theta.shape[1] != model.n_params:
        raise GdchaosError(f"theta: expected shape (R, {model.n_params}), got {theta.shape}")


def _check_arguments(model: Model, theta: np.ndarray, x: np.ndarray, y: np.ndarray,
                     v0: np.ndarray | None, tol: float, max_iter: int, subset: int | None) -> None:
    """Raise ``GdchaosError`` on bad arguments of :func:`top_eigenvalue`."""
    _check_theta(model, theta)
    model.check_data(x, y)
    if v0 is not None:
        if np.shape(v0) != theta.shape:
            raise GdchaosError(f"v0: expected shape {theta.shape} like theta, got {np.shape(v0)}")
        norms = np.linalg.norm(v0, axis=1)
        if not np.all(np.isfinite(norms) & (norms > 0)):
            raise GdchaosError("v0: every row must be finite and nonzero")
    if not (np.isfinite(tol) and tol > 0):
        raise GdchaosError(f"tol: must be a finite number > 0, got {tol}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise GdchaosError(f"max_iter: must be an integer >= 1, got {max_iter!r}")
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, (int, np.integer))
                               or not 1 <= subset <= x.shape[0]):
        raise GdchaosError(f"subset: must be an integer in [1, {x.shape[0]}], got {subset!r}")
