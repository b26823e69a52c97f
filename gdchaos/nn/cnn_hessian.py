"""Exact Hessian-vector products of a CNN's training loss, for all R networks of a batch at once.

The R-operator through conv blocks (conv, activation, max pooling; channels-last, as the CNN engine
computes them); :meth:`CNNHessianOperator.__call__` has the equations, docs/sharpness.md the tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gdchaos import backend
from gdchaos.errors import GdchaosError
from gdchaos.nn.base import DEFAULT_MEMORY_BUDGET
from gdchaos.nn.cnn import CHUNKS_PER_TASK, CNN


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
    """v -> H v for the networks theta (R, P) of a :class:`~gdchaos.nn.CNN` on the data (x, y).

    Same interface and conventions as :class:`HessianOperator`: the theta-only part (block outputs,
    window positions of the maxima, dL/dP, logits, dL/dz) is computed once per chunk of samples and
    kept when it fits in ``memory_budget`` bytes, otherwise recomputed at every call. Chunks run on
    the CNN engine's worker threads (``backend.map_chunks``), ``CHUNKS_PER_TASK`` per task, and tasks
    are summed in order: results do not depend on the number of threads.
    """

    def __init__(self, model: CNN, theta: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> None:
        model.check_theta(theta)
        self.model, self.theta = model, theta
        self._x, self._y = x.astype(model.dtype, copy=False), y
        self._scale = 1.0 / x.shape[0]
        blocks = model.blocks
        self._first = next((i for i, b in enumerate(blocks) if b.conv is not None), len(blocks))
        # about twice the work arrays of an evaluation per chunk
        self._step = model.chunk_size(2 * theta.shape[0], memory_budget)
        self._kept = None
        if self.kept_bytes(theta.shape[0], x.shape[0]) <= memory_budget:
            params = model.engine_params(theta)
            self._kept = list(backend.map_chunks(
                lambda start, stop: self._linearise(params, start, stop).keep(self._x),
                x.shape[0], self._step))

    def kept_bytes(self, n_nets: int, n_samples: int) -> int:
        """Bytes of the theta-only arrays of ``n_nets`` networks on ``n_samples`` samples."""
        model, blocks = self.model, self.model.blocks
        maps = sum(int(np.prod(block.shape_out)) for block in blocks[self._first:])
        # the first conv's input, or without conv the features: a copy unless they are the data
        shared = 0 if self._first == 0 or not blocks else int(np.prod(
            blocks[self._first].shape_in if self._first < len(blocks) else model.flat_shape))
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
            raise GdchaosError(f"v: must be of shape {theta.shape} like theta; got {v.shape}")
        params = model.engine_params(theta)
        direction = model.engine_params(v.astype(model.dtype, copy=False))
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
        product = model.flat_gradient(total)
        if model.l2 > 0:
            mask = model.weight_mask()
            product[:, mask] += model.l2 * v[:, mask]
        return product

    def _linearise(self, params: list[np.ndarray], start: int, stop: int) -> _ConvLinearisation:
        """Forward pass, softmax and the backward pass for dL/dP (no weight gradients) on samples
        start..stop-1; large arrays are this thread's work arrays (valid until its next chunk)."""
        model, blocks, first = self.model, self.model.blocks, self._first
        logits, saved = model.forward(params, self._x[start:stop])
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
        blocks, first = self.model.blocks, self._first
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
