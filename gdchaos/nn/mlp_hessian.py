"""Exact Hessian-vector products of an MLP's training loss, for all R networks of a batch at once.

H v by Pearlmutter's R-operator, R{f} = d/dt f(theta + t v)|_{t=0}, applied to the forward and
backward pass of :class:`~gdchaos.nn.MLP` (forward-over-reverse): R{grad L} = H v. The equations
are in :meth:`HessianOperator.__call__`; docs/sharpness.md has the derivation and the tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gdchaos import backend
from gdchaos.errors import GdchaosError
from gdchaos.nn.base import DEFAULT_MEMORY_BUDGET
from gdchaos.nn.mlp import MLP, contiguous, first_layer_matrix, fresh_array


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
    ``whole_network``: small networks (``MLP.whole_network``) take the whole-network kernel instead
    (:func:`gdchaos.backend.small_hvp`), the same equations with each network on one thread (equal to
    round-off, not bit for bit: off by default, so the sharpness keeps the bits of earlier versions).
    ``reuse``: an operator no longer needed (e.g. the previous epoch's) whose kept arrays this one
    takes over and overwrites (fresh arrays of that size are page-faulted in); ``reuse`` still
    answers afterwards, recomputing its linearisation on every call.
    """

    def __init__(self, model: MLP, theta: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET, whole_network: bool = False,
                 reuse: "HessianOperator | None" = None) -> None:
        model.check_theta(theta)
        self.model, self.theta = model, theta
        self._arrays: dict[tuple[int, str], np.ndarray] = {}
        if reuse is not None:
            self._arrays, reuse._arrays, reuse._kept = reuse._arrays, {}, None
        self._x, self._y = x.astype(model.dtype, copy=False), y
        self._scale = 1.0 / x.shape[0]
        self._sparse = backend.sparse_rows(self._x)
        # about twice evaluate's arrays per chunk
        step = model.chunk_step(2 * theta.shape[0], memory_budget, self._sparse)
        self._chunks = [slice(start, start + step) for start in range(0, x.shape[0], step)]
        widths = model.sizes[1:]
        kept = np.dtype(model.dtype).itemsize * theta.shape[0] * x.shape[0] * (
            3 * sum(widths[:-1]) + 2 * widths[-1])
        self._kept = None
        self._whole = whole_network and model.whole_network(x.shape[0])  # backend.small_hvp: nothing to keep
        if kept <= memory_budget and not self._whole:
            params = model.unflatten(theta)
            self._kept = [self._linearise(params, chunk, self._keeper(index))
                          for index, chunk in enumerate(self._chunks)]

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
            raise GdchaosError(f"v: must be of shape {theta.shape} like theta; got {v.shape}")
        if self._whole:
            return backend.small_hvp(theta, v, self._x, self._y, self.model.sizes, self.model.activation,
                                     self.model.l2).astype(theta.dtype, copy=False)
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

    def _keeper(self, index: int):
        """``work(tag, shape, dtype)`` giving the kept arrays of chunk ``index``, owned by this operator."""
        def work(tag: str, shape: tuple[int, ...], dtype) -> np.ndarray:
            array = self._arrays.get((index, tag))
            if array is None or array.shape != shape or array.dtype != dtype:
                array = self._arrays[index, tag] = np.empty(shape, dtype)
            return array
        return work

    def _linearise(self, params: list[np.ndarray], chunk: slice, work=None) -> _Linearisation:
        """Forward pass and dL/dz, dL/dA (without the weight gradients) on one chunk; ``work`` as in
        ``MLP.forward`` (fresh arrays by default)."""
        model = self.model
        work = work or fresh_array
        weights, biases = params[0::2], contiguous(params[1::2])
        stop = min(chunk.stop, self._x.shape[0])
        outputs = model.forward(weights, biases, model.first_layer(weights[0], self._sparse), self._x,
                                chunk.start, stop, self._sparse, work)
        hidden, logits = outputs[:-1], outputs[-1]
        _, _, delta = backend.softmax_cross_entropy(logits, biases[-1], self._y[chunk], self._scale,
                                                    grad=work("delta_out", logits.shape, logits.dtype))
        deltas, grads_a = [delta], []
        for layer in range(model.n_layers - 1, 0, -1):
            below = hidden[layer - 1]
            grads_a.insert(0, backend.batched_matmul(deltas[0], weights[layer].transpose(0, 2, 1),
                                                     out=work(f"grad_a{layer}", below.shape, below.dtype)))
            if layer > 1:
                deltas.insert(0, backend.activation_backward(grads_a[0], below, model.activation,
                                                             out=work(f"delta{layer}", below.shape, below.dtype)))
        return _Linearisation(hidden, logits, deltas, grads_a)

    def _r_pass(self, params, direction, state: _Linearisation, chunk: slice, out) -> None:
        """R-forward and R-backward pass on one chunk; its share of H v is added into ``out``.

        Temporaries are the thread's scratch arrays (``backend.scratch``): a fresh array of this size
        is page-faulted in on every call, and a tangent run makes one call per epoch."""
        activation, n_layers = self.model.activation, self.model.n_layers
        weights, r_weights, r_biases = params[0::2], direction[0::2], direction[1::2]
        start, stop = chunk.start, min(chunk.stop, self._x.shape[0])
        first = first_layer_matrix(r_weights[0])
        dtype, n = first.dtype, stop - start
        cat = (n, first.shape[1])
        if self._sparse is None:
            r_z = backend.input_matmul(self._x[start:stop], first, out=_work("r_z", cat, dtype))
        else:
            r_z = backend.sparse_matmul(self._sparse, start, stop, first, out=_work("r_z", cat, dtype))
        hidden0 = state.hidden[0]
        r_hidden = [backend.activation_rop_split(r_z, hidden0, r_biases[0], activation,
                                                 out=_work("r_a1", hidden0.shape, dtype))]
        for layer in range(1, n_layers):
            shape = (*r_hidden[-1].shape[:2], weights[layer].shape[2])
            rz = backend.batched_matmul(r_hidden[-1], weights[layer], out=_work(f"r_z{layer + 1}", shape, dtype))
            rz += backend.batched_matmul(state.hidden[layer - 1], r_weights[layer],
                                         out=_work("r_term", shape, dtype))
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
            r_grad_a = backend.batched_matmul(r_delta, weights[layer].transpose(0, 2, 1),
                                              out=_work("r_grad_a", below.shape, dtype))
            r_grad_a += backend.batched_matmul(delta, r_weights[layer].transpose(0, 2, 1),
                                               out=_work("r_term_a", below.shape, dtype))
            concatenate = layer == 1
            shape = (below.shape[1], below.shape[0] * below.shape[2]) if concatenate else below.shape
            r_delta = backend.activation_backward_rop(state.grads_a[layer - 1], r_grad_a, below,
                                                      r_below, activation, concatenate=concatenate,
                                                      out=_work(f"r_delta{layer}", shape, dtype))
        n_nets, n_in, width = out_w[0].shape
        if self._sparse is None:
            r_grad_first = backend.input_matmul_transposed(self._x[start:stop], r_delta)
        else:
            r_grad_first = backend.sparse_transposed_matmul(self._sparse, start, stop, r_delta)
        out_w[0] += r_grad_first.reshape(
            n_in, n_nets, width).transpose(1, 0, 2)
        out_b[0] += r_delta.sum(axis=0).reshape(n_nets, width)


def _work(tag: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """This thread's reusable array for the R-pass temporary ``tag`` (contents undefined)."""
    return backend.scratch(f"hvp-{tag}", shape, dtype)
