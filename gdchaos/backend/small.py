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
from gdchaos.backend.dense import _activate_row, _derivative_from_output, _launch, activation_code
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
        zeros = np.zeros(w)  # _activate_row adds a bias: the biases are already in
        for n in range(n_samples):
            # ------------------------------------------------------ forward
            for layer in range(n_layers):
                n_in, n_out = sizes[layer], sizes[layer + 1]
                w0 = param_offsets[layer]
                b0 = w0 + n_in * n_out
                out0 = act_offsets[layer]
                in0 = act_offsets[layer - 1] if layer > 0 else 0
                for j in range(n_out):
                    # a_j = b_j + sum_k in_k W_kj, four inputs per pass over the block of networks
                    a = acts[out0 + j]
                    a[:] = params[b0 + j]
                    k = 0
                    while k + 4 <= n_in:
                        p0, p1 = params[w0 + k * n_out + j], params[w0 + (k + 1) * n_out + j]
                        p2, p3 = params[w0 + (k + 2) * n_out + j], params[w0 + (k + 3) * n_out + j]
                        if layer == 0:
                            v0, v1, v2, v3 = x[n, k], x[n, k + 1], x[n, k + 2], x[n, k + 3]
                            for i in range(w):
                                a[i] += (v0 * p0[i] + v1 * p1[i]) + (v2 * p2[i] + v3 * p3[i])
                        else:
                            q0, q1 = acts[in0 + k], acts[in0 + k + 1]
                            q2, q3 = acts[in0 + k + 2], acts[in0 + k + 3]
                            for i in range(w):
                                a[i] += (q0[i] * p0[i] + q1[i] * p1[i]) + (q2[i] * p2[i] + q3[i] * p3[i])
                        k += 4
                    while k < n_in:
                        p0 = params[w0 + k * n_out + j]
                        if layer == 0:
                            v0 = x[n, k]
                            for i in range(w):
                                a[i] += v0 * p0[i]
                        else:
                            q0 = acts[in0 + k]
                            for i in range(w):
                                a[i] += q0[i] * p0[i]
                        k += 1
                if layer < n_layers - 1:
                    for j in range(n_out):
                        _activate_row(acts[out0 + j], zeros, code, acts[out0 + j])
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
                    # dL/da_k = act'(a_k) sum_j W_kj delta_j, four outputs per pass
                    b = below[k]
                    b[:] = 0.0
                    row = w0 + k * n_out
                    j = 0
                    while j + 4 <= n_out:
                        p0, p1, p2, p3 = params[row + j], params[row + j + 1], params[row + j + 2], params[row + j + 3]
                        d0, d1, d2, d3 = delta[j], delta[j + 1], delta[j + 2], delta[j + 3]
                        for i in range(w):
                            b[i] += (p0[i] * d0[i] + p1[i] * d1[i]) + (p2[i] * d2[i] + p3[i] * d3[i])
                        j += 4
                    while j < n_out:
                        p0, d0 = params[row + j], delta[j]
                        for i in range(w):
                            b[i] += p0[i] * d0[i]
                        j += 1
                    q = acts[in0 + k]
                    for i in range(w):
                        b[i] *= _derivative_from_output(q[i], code)
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
