"""Whole-network kernel for many small MLPs (Iris-sized): samples on the innermost axis.

For tiny networks the layer-by-layer path (one BLAS call or kernel per layer for all networks)
streams large arrays through memory several times per epoch. Here each thread takes whole
networks, one after another, and keeps one network's activations on all samples, (units, N),
in its cache. Every loop runs over the samples of one unit: a contiguous, vectorised pass with
the network's weights as scalars (x is transposed once to (features, N)). Weight gradients are
dot products over the samples. Threads take different networks, so a network's result does not
depend on the batch it is in. Same mathematics as :mod:`gdchaos.model` (which the tests compare
against):

    a_0 = x,  a_l = act(a_{l-1} W_l + b_l),  z_L = a_{L-1} W_L + b_L,
    loss = sum_n [logsumexp(z_n) - z_{n,y_n}],  dL/dz = scale (softmax(z) - onehot(y)),
    dL/dW_l = a_{l-1}^T delta_l,  dL/db_l = sum_n delta_l,  delta_{l-1} = (delta_l W_l^T) act'(a_{l-1}).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from gdchaos.backend import vecmath
from gdchaos.backend.dense import _launch, activation_code
from gdchaos.backend.jit import kernel, reduction

CHUNKS_PER_THREAD = 8  # networks are dealt to threads in this many chunks each (load balance)
LOG_EVERY = 32  # the loss sums log(prod of 32 softmax denominators): each is in [1, C]


# sums over samples: vectorised with several partial sums (see jit.reduction)
@reduction()
def _dot(a, b, n):
    """sum_k a[k] b[k], k < n."""
    s = 0.0
    for k in range(n):
        s += a[k] * b[k]
    return s


@reduction()
def _dot4(a, b0, b1, b2, b3, n):
    """The four sums_k a[k] b_i[k], k < n, in one pass over a."""
    s0 = s1 = s2 = s3 = 0.0
    for k in range(n):
        s0 += a[k] * b0[k]
        s1 += a[k] * b1[k]
        s2 += a[k] * b2[k]
        s3 += a[k] * b3[k]
    return s0, s1, s2, s3


@reduction()
def _sum(a, n):
    """sum_k a[k], k < n."""
    s = 0.0
    for k in range(n):
        s += a[k]
    return s


@kernel(parallel=True)
def _small_mlp(theta, x_t, labels, sizes, code, scale, want_grad, loss_out, correct_out, grad_out, n_chunks):
    n_nets, n_params = theta.shape
    n_samples = x_t.shape[1]
    n_layers = sizes.shape[0] - 1
    act_offsets = np.zeros(n_layers + 1, dtype=np.int64)
    param_offsets = np.zeros(n_layers + 1, dtype=np.int64)
    for layer in range(n_layers):
        act_offsets[layer + 1] = act_offsets[layer] + sizes[layer + 1]
        param_offsets[layer + 1] = param_offsets[layer] + sizes[layer] * sizes[layer + 1] + sizes[layer + 1]
    width_max = 0
    for layer in range(1, n_layers + 1):
        width_max = max(width_max, sizes[layer])
    n_classes = sizes[n_layers]
    logit0 = act_offsets[n_layers - 1]
    for chunk in prange(n_chunks):
        acts = np.empty((act_offsets[n_layers], n_samples))
        delta = np.empty((width_max, n_samples))
        below = np.empty((width_max, n_samples))
        row_max = np.empty(n_samples)
        arg_max = np.empty(n_samples, dtype=np.int64)
        inv = np.empty(n_samples)
        r_start = chunk * n_nets // n_chunks
        r_stop = (chunk + 1) * n_nets // n_chunks
        for r in range(r_start, r_stop):
            p = theta[r]
            # ---------------------------------------------------------- forward
            for layer in range(n_layers):
                n_in, n_out = sizes[layer], sizes[layer + 1]
                w0 = param_offsets[layer]
                b0 = w0 + n_in * n_out
                out0 = act_offsets[layer]
                ins = x_t if layer == 0 else acts[act_offsets[layer - 1]:act_offsets[layer]]
                for j in range(n_out):  # a_j = act(b_j + sum_k in_k W_kj), four inputs per pass
                    a = acts[out0 + j]
                    bias = p[b0 + j]
                    k = 0
                    if n_in >= 4:
                        c0, c1, c2, c3 = p[w0 + j], p[w0 + n_out + j], p[w0 + 2 * n_out + j], p[w0 + 3 * n_out + j]
                        i0, i1, i2, i3 = ins[0], ins[1], ins[2], ins[3]
                        for n in range(n_samples):
                            a[n] = bias + ((c0 * i0[n] + c1 * i1[n]) + (c2 * i2[n] + c3 * i3[n]))
                        k = 4
                    else:
                        for n in range(n_samples):
                            a[n] = bias
                    while k + 4 <= n_in:
                        c0, c1 = p[w0 + k * n_out + j], p[w0 + (k + 1) * n_out + j]
                        c2, c3 = p[w0 + (k + 2) * n_out + j], p[w0 + (k + 3) * n_out + j]
                        i0, i1, i2, i3 = ins[k], ins[k + 1], ins[k + 2], ins[k + 3]
                        for n in range(n_samples):
                            a[n] += (c0 * i0[n] + c1 * i1[n]) + (c2 * i2[n] + c3 * i3[n])
                        k += 4
                    while k < n_in:
                        c0 = p[w0 + k * n_out + j]
                        i0 = ins[k]
                        for n in range(n_samples):
                            a[n] += c0 * i0[n]
                        k += 1
                    if layer < n_layers - 1:
                        if code == 0:
                            for n in range(n_samples):
                                a[n] = vecmath.tanh(a[n])
                        elif code == 1:
                            for n in range(n_samples):
                                a[n] = vecmath.sigmoid(a[n])
                        else:
                            for n in range(n_samples):
                                a[n] = a[n] if a[n] > 0.0 else 0.0
            # ---------------------------------------------------------- loss
            z0 = acts[logit0]
            for n in range(n_samples):
                row_max[n] = z0[n]
                arg_max[n] = 0
            for c in range(1, n_classes):
                z = acts[logit0 + c]
                for n in range(n_samples):
                    bigger = z[n] > row_max[n]
                    row_max[n] = z[n] if bigger else row_max[n]
                    arg_max[n] = c if bigger else arg_max[n]
            for n in range(n_samples):  # inv: the softmax denominators, then scale / them
                inv[n] = 0.0
            for c in range(n_classes):
                z = acts[logit0 + c]
                e = delta[c]
                for n in range(n_samples):
                    e[n] = vecmath.exp_nonpositive(z[n] - row_max[n])
                    inv[n] += e[n]
            loss = 0.0
            correct = 0
            product = 1.0
            for n in range(n_samples):
                y = labels[n]
                product *= inv[n]
                if n % LOG_EVERY == LOG_EVERY - 1:
                    loss += np.log(product)
                    product = 1.0
                loss += row_max[n] - acts[logit0 + y, n]
                correct += arg_max[n] == y
            loss_out[r] = loss + np.log(product)
            correct_out[r] = correct
            if not want_grad:
                continue
            for n in range(n_samples):
                inv[n] = scale / inv[n]
            for c in range(n_classes):
                e = delta[c]
                for n in range(n_samples):
                    e[n] *= inv[n]
            for n in range(n_samples):  # delta = scale (softmax - onehot)
                delta[labels[n], n] -= scale
            g = grad_out[r]
            # ---------------------------------------------------------- backward
            for layer in range(n_layers - 1, -1, -1):
                n_in, n_out = sizes[layer], sizes[layer + 1]
                w0 = param_offsets[layer]
                b0 = w0 + n_in * n_out
                ins = x_t if layer == 0 else acts[act_offsets[layer - 1]:act_offsets[layer]]
                for j in range(n_out):
                    g[b0 + j] = _sum(delta[j], n_samples)
                for k in range(n_in):
                    row = w0 + k * n_out
                    j = 0
                    while j + 4 <= n_out:  # one pass over in_k for four weights
                        g[row + j], g[row + j + 1], g[row + j + 2], g[row + j + 3] = _dot4(
                            ins[k], delta[j], delta[j + 1], delta[j + 2], delta[j + 3], n_samples)
                        j += 4
                    while j < n_out:
                        g[row + j] = _dot(ins[k], delta[j], n_samples)
                        j += 1
                if layer == 0:
                    break
                for k in range(n_in):  # dL/da_k = act'(a_k) sum_j W_kj delta_j, four outputs per pass
                    b = below[k]
                    row = w0 + k * n_out
                    j = 0
                    if n_out >= 4:
                        c0, c1, c2, c3 = p[row], p[row + 1], p[row + 2], p[row + 3]
                        d0, d1, d2, d3 = delta[0], delta[1], delta[2], delta[3]
                        for n in range(n_samples):
                            b[n] = (c0 * d0[n] + c1 * d1[n]) + (c2 * d2[n] + c3 * d3[n])
                        j = 4
                    else:
                        for n in range(n_samples):
                            b[n] = 0.0
                    while j + 4 <= n_out:
                        c0, c1, c2, c3 = p[row + j], p[row + j + 1], p[row + j + 2], p[row + j + 3]
                        d0, d1, d2, d3 = delta[j], delta[j + 1], delta[j + 2], delta[j + 3]
                        for n in range(n_samples):
                            b[n] += (c0 * d0[n] + c1 * d1[n]) + (c2 * d2[n] + c3 * d3[n])
                        j += 4
                    while j < n_out:
                        c0, d0 = p[row + j], delta[j]
                        for n in range(n_samples):
                            b[n] += c0 * d0[n]
                        j += 1
                    q = ins[k]
                    if code == 0:
                        for n in range(n_samples):
                            b[n] *= 1.0 - q[n] * q[n]
                    elif code == 1:
                        for n in range(n_samples):
                            b[n] *= q[n] * (1.0 - q[n])
                    else:
                        for n in range(n_samples):
                            b[n] *= 1.0 if q[n] > 0.0 else 0.0
                delta, below = below, delta


def small_mlp(theta: np.ndarray, x: np.ndarray, labels: np.ndarray, sizes: tuple[int, ...],
              activation: str, scale: float, grad: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Summed cross-entropy, correct counts and (scaled) gradients of R small MLPs, (R,), (R,), (R, P).

    ``theta`` (R, P) uses the flat layout of :class:`gdchaos.model.MLP`.
    """
    n_nets, n_params = theta.shape
    theta = np.ascontiguousarray(theta)
    n_samples = x.shape[0]
    x_t = np.ascontiguousarray(x.T, dtype=np.float64)  # float32 networks also compute in float64
    loss = np.empty(n_nets)
    correct = np.empty(n_nets, dtype=np.int64)
    gradient = np.empty((n_nets if grad else 0, n_params), dtype=theta.dtype)
    n_chunks = max(1, min(n_nets, CHUNKS_PER_THREAD * numba.get_num_threads()))
    _launch(_small_mlp, n_nets * n_samples * n_params, theta, x_t, np.ascontiguousarray(labels),
            np.asarray(sizes, dtype=np.int64), activation_code(activation), scale, grad, loss, correct,
            gradient, n_chunks)
    return loss, correct, gradient if grad else None
