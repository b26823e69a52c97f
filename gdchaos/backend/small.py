"""Whole-network kernel for many small MLPs (Iris-sized): networks on the innermost axis.

For tiny networks the layer-by-layer path (one BLAS call or kernel per layer for all networks)
streams large arrays through memory several times per epoch, and per-network loops over 3-10
units cannot use SIMD. Here the parameters are transposed to (P, R) so that the innermost loop
runs over a block of networks: one sample at a time, every multiply-add is a contiguous vector
operation over the block, and a block's activations and gradients stay in cache. Threads take
different blocks. Same mathematics as :mod:`gdchaos.model` (which the tests compare against):

    a_0 = x,  a_l = act(a_{l-1} W_l + b_l),  z_L = a_{L-1} W_L + b_L,
    loss = sum_n [logsumexp(z_n) - z_{n,y_n}],  dL/dz = scale (softmax(z) - onehot(y)).
"""
from __future__ import annotations

import numpy as np
from numba import prange

from gdchaos.backend import vecmath
from gdchaos.backend.dense import _activate, _derivative_from_output, _launch, activation_code
from gdchaos.backend.jit import kernel

BLOCK = 64  # networks per block (vector length of the inner loops)


@kernel(parallel=True)
def _small_mlp(theta_t, x, labels, sizes, code, scale, want_grad, loss_out, correct_out, grad_t):
    n_params, n_nets = theta_t.shape
    n_samples = x.shape[0]
    n_layers = sizes.shape[0] - 1
    act_offsets = np.zeros(n_layers + 1, dtype=np.int64)  # rows of a_1..a_L in `acts`
    param_offsets = np.zeros(n_layers + 1, dtype=np.int64)  # row of W_l in theta_t (b_l follows)
    for layer in range(n_layers):
        act_offsets[layer + 1] = act_offsets[layer] + sizes[layer + 1]
        param_offsets[layer + 1] = param_offsets[layer] + sizes[layer] * sizes[layer + 1] + sizes[layer + 1]
    width_max = 0
    for layer in range(n_layers + 1):
        width_max = max(width_max, sizes[layer])
    n_classes = sizes[n_layers]
    logit0 = act_offsets[n_layers - 1]
    n_blocks = (n_nets + BLOCK - 1) // BLOCK
    for block in prange(n_blocks):
        r0 = block * BLOCK
        w = min(BLOCK, n_nets - r0)
        params = np.ascontiguousarray(theta_t[:, r0:r0 + w])
        acts = np.empty((act_offsets[n_layers], w))
        delta = np.empty((width_max, w))
        below = np.empty((width_max, w))
        grads = np.zeros((n_params, w))
        loss = np.zeros(w)
        correct = np.zeros(w, dtype=np.int64)
        row_max = np.empty(w)
        arg_max = np.empty(w, dtype=np.int64)
        total = np.empty(w)
        for n in range(n_samples):
            # ------------------------------------------------------ forward
            for layer in range(n_layers):
                n_in, n_out = sizes[layer], sizes[layer + 1]
                w0 = param_offsets[layer]
                b0 = w0 + n_in * n_out
                out0 = act_offsets[layer]
                in0 = act_offsets[layer - 1] if layer > 0 else 0
                for j in range(n_out):
                    for i in range(w):
                        acts[out0 + j, i] = params[b0 + j, i]
                for k in range(n_in):
                    for j in range(n_out):
                        row = w0 + k * n_out + j
                        if layer == 0:
                            value = x[n, k]
                            for i in range(w):
                                acts[out0 + j, i] += value * params[row, i]
                        else:
                            for i in range(w):
                                acts[out0 + j, i] += acts[in0 + k, i] * params[row, i]
                if layer < n_layers - 1:
                    for j in range(n_out):
                        for i in range(w):
                            acts[out0 + j, i] = _activate(acts[out0 + j, i], code)
            # ------------------------------------------------------ loss
            y = labels[n]
            for i in range(w):
                row_max[i] = acts[logit0, i]
                arg_max[i] = 0
                total[i] = 0.0
            for c in range(1, n_classes):
                for i in range(w):
                    if acts[logit0 + c, i] > row_max[i]:
                        row_max[i] = acts[logit0 + c, i]
                        arg_max[i] = c
            for c in range(n_classes):
                for i in range(w):
                    delta[c, i] = vecmath.exp_nonpositive(acts[logit0 + c, i] - row_max[i])
                    total[i] += delta[c, i]
            for i in range(w):
                loss[i] += row_max[i] + np.log(total[i]) - acts[logit0 + y, i]
                if arg_max[i] == y:
                    correct[i] += 1
            if not want_grad:
                continue
            for c in range(n_classes):  # delta = scale (softmax - onehot)
                for i in range(w):
                    delta[c, i] *= scale / total[i]
            for i in range(w):
                delta[y, i] -= scale
            # ------------------------------------------------------ backward
            for layer in range(n_layers - 1, -1, -1):
                n_in, n_out = sizes[layer], sizes[layer + 1]
                w0 = param_offsets[layer]
                b0 = w0 + n_in * n_out
                in0 = act_offsets[layer - 1] if layer > 0 else 0
                for j in range(n_out):
                    for i in range(w):
                        grads[b0 + j, i] += delta[j, i]
                for k in range(n_in):
                    for j in range(n_out):
                        row = w0 + k * n_out + j
                        if layer == 0:
                            value = x[n, k]
                            for i in range(w):
                                grads[row, i] += value * delta[j, i]
                        else:
                            for i in range(w):
                                grads[row, i] += acts[in0 + k, i] * delta[j, i]
                if layer == 0:
                    break
                for k in range(n_in):
                    for i in range(w):
                        below[k, i] = 0.0
                    for j in range(n_out):
                        row = w0 + k * n_out + j
                        for i in range(w):
                            below[k, i] += params[row, i] * delta[j, i]
                    for i in range(w):
                        below[k, i] *= _derivative_from_output(acts[in0 + k, i], code)
                delta, below = below, delta
        for i in range(w):
            loss_out[r0 + i] = loss[i]
            correct_out[r0 + i] = correct[i]
        if want_grad:
            grad_t[:, r0:r0 + w] = grads


def small_mlp(theta: np.ndarray, x: np.ndarray, labels: np.ndarray, sizes: tuple[int, ...],
              activation: str, scale: float, grad: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Summed cross-entropy, correct counts and (scaled) gradients of R small MLPs, (R,), (R,), (R, P).

    ``theta`` (R, P) uses the flat layout of :class:`gdchaos.model.MLP`.
    """
    n_nets, n_params = theta.shape
    theta_t = np.ascontiguousarray(theta.T)
    loss = np.empty(n_nets)
    correct = np.empty(n_nets, dtype=np.int64)
    grad_t = np.empty((n_params, n_nets) if grad else (0, n_nets), dtype=theta.dtype)
    _launch(_small_mlp, n_nets * x.shape[0] * n_params, theta_t, x, labels,
            np.asarray(sizes, dtype=np.int64), activation_code(activation), scale, grad, loss, correct,
            grad_t)
    return loss, correct, np.ascontiguousarray(grad_t.T) if grad else None
