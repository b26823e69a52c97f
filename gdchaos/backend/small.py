"""Whole-network kernel for many small MLPs (Iris-sized): samples on the innermost axis.

For tiny networks the layer-by-layer path (one BLAS call or kernel per layer for all networks)
streams large arrays through memory several times per epoch. Here each thread takes whole
networks, one after another; a block of LANES samples (one per lane of a :mod:`.vector`
vector) goes through the whole forward and backward pass at a time, with the network's weights
as scalars (x is transposed and padded once, :func:`_blocked`), and the weight gradients are
summed per lane. The Hessian-vector kernel keeps one network's activations on all samples,
(units, N), with loops over the samples of one unit. Threads take different networks, so a network's result does not
depend on the batch it is in. Same mathematics as :mod:`gdchaos.nn.mlp` (which the tests compare
against):

    a_0 = x,  a_l = act(a_{l-1} W_l + b_l),  z_L = a_{L-1} W_L + b_L,
    loss = sum_n [logsumexp(z_n) - z_{n,y_n}],  dL/dz = scale (softmax(z) - onehot(y)),
    dL/dW_l = a_{l-1}^T delta_l,  dL/db_l = sum_n delta_l,  delta_{l-1} = (delta_l W_l^T) act'(a_{l-1}).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from gdchaos.backend import vecmath, vector
from gdchaos.backend.activations import activation_code
from gdchaos.backend.jit import kernel, reduction
from gdchaos.backend.rows import activate, activate_row, derivative_from_output, dot, segment_distances, sgd_step
from gdchaos.backend.simd import aligned_empty, aligned_zeros
from gdchaos.backend.vector import LANES
from gdchaos.backend.threads import deal, num_threads

CHUNKS_PER_THREAD = 8  # networks are dealt to threads in this many chunks each (load balance)
LOG_EVERY = 32  # the loss sums log(prod of 32 softmax denominators): each is in [1, C]


@reduction()
def _sum(a, n):
    """sum_k a[k], k < n."""
    s = 0.0
    for k in range(n):
        s += a[k]
    return s


@njit(inline="always")
def _weighted_rows(out, bias, rows, p, index0, stride, count, n_samples):
    """out[n] = bias + sum_{i < count} p[index0 + i stride] rows[i, n], four rows per pass over the
    samples (forward: a_j from the inputs and column j of W; backward: dL/da_k from delta and row k)."""
    i = 0
    if count >= 4:
        c0, c1, c2, c3 = p[index0], p[index0 + stride], p[index0 + 2 * stride], p[index0 + 3 * stride]
        r0, r1, r2, r3 = rows[0], rows[1], rows[2], rows[3]
        for n in range(n_samples):
            out[n] = bias + ((c0 * r0[n] + c1 * r1[n]) + (c2 * r2[n] + c3 * r3[n]))
        i = 4
    else:
        for n in range(n_samples):
            out[n] = bias
    while i + 4 <= count:
        c0, c1 = p[index0 + i * stride], p[index0 + (i + 1) * stride]
        c2, c3 = p[index0 + (i + 2) * stride], p[index0 + (i + 3) * stride]
        r0, r1, r2, r3 = rows[i], rows[i + 1], rows[i + 2], rows[i + 3]
        for n in range(n_samples):
            out[n] += (c0 * r0[n] + c1 * r1[n]) + (c2 * r2[n] + c3 * r3[n])
        i += 4
    while i < count:
        c0, r0 = p[index0 + i * stride], rows[i]
        for n in range(n_samples):
            out[n] += c0 * r0[n]
        i += 1


# what one pass over a network computes
ACCURACY = 0  # correct count only (arg-max of the logits, no softmax)
LOSS = 1  # summed cross-entropy and correct count
GRADIENT = 2  # ... and the gradient of the mean loss (times ``scale``) plus the L2 term
# as int64, not literal ints: one compiled _network serves every mode
_ACCURACY, _GRADIENT = np.int64(ACCURACY), np.int64(GRADIENT)


@kernel()
def _network(p, g, mode, x, labels, n_samples, sizes, act_offsets, param_offsets, code, scale, l2, scratch):
    """One pass of network ``p`` over ``n_samples`` samples: returns the summed cross-entropy (0 in
    ACCURACY mode) and the correct count; in GRADIENT mode also writes scale dL/dtheta + l2 W into ``g``.

    ``x`` holds feature k of sample n at k S + n and ``labels`` the labels as floats, S a multiple
    of LANES (samples past ``n_samples``: label -1, ignored). Each block of LANES samples, one per vector
    lane, goes through the forward pass, the softmax and the backward pass before the next block;
    the gradient sums stay per lane in ``sums`` and are added across lanes at the end (in a fixed
    order). ``scratch``: the thread's work arrays (:func:`_scratch`): the block's inputs and
    activations of every layer in ``acts`` (rows of LANES from ``act_offsets``), delta of two layers
    in ``deltas``. Called, not inlined: compiled once for all its callers and modes."""
    acts, deltas, sums = scratch
    stride = labels.shape[0]
    n_layers = sizes.shape[0] - 1
    n_classes = sizes[n_layers]
    logit0 = act_offsets[n_layers] * LANES
    below0 = (deltas.shape[0] // 2)
    if mode == GRADIENT:
        for q in range(param_offsets[n_layers] * LANES):
            sums[q] = 0.0
    margins, product, hits, logs = vector.splat(0.0), vector.splat(1.0), vector.splat(0.0), 0.0
    for first in range(0, stride, LANES):
        whole = first + LANES <= n_samples
        inside = vector.iota() + first
        for k in range(sizes[0]):  # the block's inputs, as the rows of layer 0
            vector.store(acts, k * LANES, vector.load(x, k * stride + first))
        # ------------------------------------------------------ forward
        for layer in range(n_layers):
            n_in, n_out = sizes[layer], sizes[layer + 1]
            w0 = param_offsets[layer]
            b0 = w0 + n_in * n_out
            in0, out0 = act_offsets[layer] * LANES, act_offsets[layer + 1] * LANES
            for j in range(n_out):  # z_j = b_j + sum_k in_k W_kj, in order of k
                z = vector.splat(p[b0 + j])
                for k in range(n_in):
                    z = vector.fma(vector.load(acts, in0 + k * LANES), p[w0 + k * n_out + j], z)
                if layer < n_layers - 1:
                    z = activate(z, code)
                vector.store(acts, out0 + j * LANES, z)
        y = vector.load(labels, first)
        top, arg_max = vector.load(acts, logit0), vector.splat(0.0)
        for c in range(1, n_classes):
            z = vector.load(acts, logit0 + c * LANES)
            arg_max = vector.where_less(top, z, c, arg_max)
            top = vector.where_less(top, z, z, top)
        hits += vector.where_equal(arg_max, y, 1.0, 0.0)
        if mode == ACCURACY:
            continue
        # ------------------------------------------------------ loss: log(sum_c e^(z_c - top)) + top - z_y
        total, z_y = vector.splat(0.0), vector.splat(0.0)
        for c in range(n_classes):
            z = vector.load(acts, logit0 + c * LANES)
            e = vecmath.exp_nonpositive(z - top)
            vector.store(deltas, c * LANES, e)
            total += e
            z_y = vector.where_equal(y, c, z, z_y)
        if whole:
            margins += top - z_y
            product *= total
        else:
            margins += vector.where_less(inside, n_samples, top - z_y, 0.0)
            product *= vector.where_less(inside, n_samples, total, 1.0)
        if (first // LANES) % LOG_EVERY == LOG_EVERY - 1:
            logs += _log_lanes(product)
            product = vector.splat(1.0)
        if mode == LOSS:
            continue
        ratio = scale / total
        for c in range(n_classes):  # delta = scale (softmax - onehot), 0 past n_samples
            d = vector.load(deltas, c * LANES) * ratio
            d = vector.where_equal(y, c, d - scale, d)
            if not whole:
                d = vector.where_less(inside, n_samples, d, 0.0)
            vector.store(deltas, c * LANES, d)
        # ------------------------------------------------------ backward: lane sums of the gradient
        d0, e0 = 0, below0  # delta of this layer at d0, of the layer below written at e0
        for layer in range(n_layers - 1, -1, -1):
            n_in, n_out = sizes[layer], sizes[layer + 1]
            w0 = param_offsets[layer]
            b0 = w0 + n_in * n_out
            in0 = act_offsets[layer] * LANES
            for j in range(n_out):
                q = (b0 + j) * LANES
                vector.store(sums, q, vector.load(sums, q) + vector.load(deltas, d0 + j * LANES))
            for k in range(n_in):
                a = vector.load(acts, in0 + k * LANES)
                for j in range(n_out):
                    q = (w0 + k * n_out + j) * LANES
                    vector.store(sums, q, vector.fma(a, vector.load(deltas, d0 + j * LANES), vector.load(sums, q)))
            if layer == 0:
                break
            for k in range(n_in):  # dL/da_k = act'(a_k) sum_j W_kj delta_j
                s = vector.splat(0.0)
                for j in range(n_out):
                    s = vector.fma(vector.load(deltas, d0 + j * LANES), p[w0 + k * n_out + j], s)
                a = vector.load(acts, in0 + k * LANES)
                vector.store(deltas, e0 + k * LANES, s * derivative_from_output(a, code))
            d0, e0 = e0, d0
    correct = int(vector.total(hits))
    if mode == ACCURACY:
        return 0.0, correct
    loss = vector.total(margins) + (logs + _log_lanes(product))
    if mode == GRADIENT:
        for layer in range(n_layers):
            w0 = param_offsets[layer]
            b0 = w0 + sizes[layer] * sizes[layer + 1]
            for q in range(w0, b0):
                g[q] = vector.total(vector.load(sums, q * LANES)) + l2 * p[q]
            for q in range(b0, param_offsets[layer + 1]):
                g[q] = vector.total(vector.load(sums, q * LANES))
    return loss, correct


@njit(inline="always")
def _log_lanes(product):
    """sum over the lanes of log(product), each lane >= 1 (a product of softmax denominators) or not
    finite: with product = 2^e m, ln 2 sum(e) (exact integers) + log(prod(m)) (m in [1, 2)), one log
    instead of LANES; a lane of NaN or infinity gives NaN (product * 0 in the sum)."""
    exponents, mantissas = vector.split_exponent(product)
    return (vector.total(exponents) * vecmath.LN2 + np.log(vector.product(mantissas))) + vector.total(product * 0.0)


@kernel()
def _squared_weights(p, sizes, param_offsets):
    """sum_l ||W_l||^2 of network ``p`` (biases excluded)."""
    total = 0.0
    for layer in range(sizes.shape[0] - 1):
        w0 = param_offsets[layer]
        for k in range(w0, w0 + sizes[layer] * sizes[layer + 1]):
            total += p[k] * p[k]
    return total


@kernel()
def _layout(sizes):
    """(rows, params): rows[l] is the first row of layer l's values in :func:`_network`'s activations
    (the inputs are layer 0; the last entry is the number of rows), params[l] the offset of W_l
    (then b_l) in the flat parameters (the last entry is P)."""
    n_layers = sizes.shape[0] - 1
    rows = np.zeros(n_layers + 2, dtype=np.int64)
    params = np.zeros(n_layers + 1, dtype=np.int64)
    for layer in range(n_layers + 1):
        rows[layer + 1] = rows[layer] + sizes[layer]
    for layer in range(n_layers):
        params[layer + 1] = params[layer] + sizes[layer] * sizes[layer + 1] + sizes[layer + 1]
    return rows, params


@kernel()
def _scratch(sizes, n_units, n_params):
    """A thread's work arrays for :func:`_network`, LANES values per row, 64-byte aligned: inputs and
    activations (n_units rows), delta of two layers (width rows each) and the lane sums of the
    gradient (n_params rows)."""
    width = 0
    for layer in range(1, sizes.shape[0]):
        width = max(width, sizes[layer])
    like = np.empty(0)
    return (aligned_zeros(n_units * LANES, like), aligned_zeros(2 * width * LANES, like),
            aligned_zeros(n_params * LANES, like))


@kernel(nogil=True)
def _mlp_chunk(theta, x, labels, n_samples, sizes, code, scale, l2, mode, loss_out, correct_out, penalty_out,
               grad_out, first, stop):
    """:func:`small_mlp` of networks [first, stop)."""
    act_offsets, param_offsets = _layout(sizes)
    scratch = _scratch(sizes, act_offsets[-1], param_offsets[-1])
    control = vector.flush_subnormals()
    for r in range(first, stop):
        g = grad_out[r] if mode == GRADIENT else grad_out[0]
        loss_out[r], correct_out[r] = _network(theta[r], g, mode, x, labels, n_samples, sizes, act_offsets,
                                               param_offsets, code, scale, l2, scratch)
        penalty_out[r] = _squared_weights(theta[r], sizes, param_offsets) if l2 > 0 else 0.0
    vector.restore_control(control)


# what ended a network's training in _train_chunk
RUNNING, REACHED, DIVERGED = 0, 1, 2


@kernel(nogil=True)
def _train_chunk(theta, eta, x, labels, n_samples, x_test, labels_test, n_test, sizes, code, l2, target, epochs,
                 steps_out, status_out, grad, first, stop):
    """:func:`small_train_to_target` of networks [first, stop)."""
    act_offsets, param_offsets = _layout(sizes)
    scratch = _scratch(sizes, act_offsets[-1], param_offsets[-1])
    control = vector.flush_subnormals()
    for r in range(first, stop):
        p, g, step = theta[r], grad[r], eta[r]
        steps, status = 0, RUNNING
        while steps < epochs:
            loss, _ = _network(p, g, _GRADIENT, x, labels, n_samples, sizes, act_offsets, param_offsets, code,
                               1.0 / n_samples, l2, scratch)
            penalty = _squared_weights(p, sizes, param_offsets) if l2 > 0 else 0.0
            finite = np.isfinite(loss / n_samples + 0.5 * l2 * penalty)
            sgd_step(p, g, step)
            steps += 1
            if not finite:
                status = DIVERGED
                break
            _, correct = _network(p, g, _ACCURACY, x_test, labels_test, n_test, sizes, act_offsets,
                                  param_offsets, code, 1.0, 0.0, scratch)
            if correct / n_test >= target:
                status = REACHED
                break
        steps_out[r] = steps
        status_out[r] = status
    vector.restore_control(control)


@kernel(nogil=True)
def _balls_chunk(theta, eta, grad, x, labels, n_samples, x_test, labels_test, n_test, sizes, code, l2, ball,
                 bounds, first_update, grad_last, loss_out, correct_out, penalty_out, test_out, dist_out, ref_out,
                 first_ball, stop_ball):
    """:func:`small_train_balls` of balls [first_ball, stop_ball)."""
    n_records = loss_out.shape[0]
    act_offsets, param_offsets = _layout(sizes)
    scratch = _scratch(sizes, act_offsets[-1], param_offsets[-1])
    control = vector.flush_subnormals()
    for b in range(first_ball, stop_ball):
        first = b * ball
        if first_update:
            for r in range(first, first + ball):
                sgd_step(theta[r], grad[r], eta[r])
        for k in range(n_records):
            mode = GRADIENT if k < n_records - 1 or grad_last else LOSS
            if ref_out.shape[0]:  # element by element: an array assignment compiles its shape checks' messages
                for q in range(theta.shape[1]):
                    ref_out[k, b, q] = theta[first, q]
            for r in range(first, first + ball):
                loss_out[k, r], correct_out[k, r] = _network(
                    theta[r], grad[r], mode, x, labels, n_samples, sizes, act_offsets, param_offsets, code,
                    1.0 / n_samples, l2, scratch)
                penalty_out[k, r] = _squared_weights(theta[r], sizes, param_offsets) if l2 > 0 else 0.0
            if n_test:
                test_out[k, b] = _network(theta[first], grad[first], _ACCURACY, x_test, labels_test, n_test, sizes,
                                          act_offsets, param_offsets, code, 1.0, 0.0, scratch)[1]
            for j in range(1, ball):  # L1 distance to the reference, per tensor
                segment_distances(theta[first], theta[first + j], bounds,
                                  dist_out[k, b * (ball - 1) + j - 1])
            if k < n_records - 1:
                for r in range(first, first + ball):
                    sgd_step(theta[r], grad[r], eta[r])
    vector.restore_control(control)


def _transposed(x: np.ndarray) -> np.ndarray:
    """x (N, d) as (d, N) float64: float32 networks also compute in float64."""
    return np.ascontiguousarray(x.T, dtype=np.float64)


def _blocked(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The samples as :func:`_network` reads them: feature k of sample n at k S + n (S: N rounded up to
    whole vectors, 64-byte aligned, zeros past N), the labels as floats (-1 past N), and N."""
    n_samples, n_features = x.shape
    stride = -(-n_samples // LANES) * LANES
    flat = aligned_empty((n_features * stride,))
    rows = flat.reshape(n_features, stride)
    rows[:, :n_samples] = x.T
    rows[:, n_samples:] = 0.0
    floats = aligned_empty((stride,))
    floats[:n_samples] = labels
    floats[n_samples:] = -1.0
    return flat, floats, n_samples


def _chunk(n_items: int) -> int:
    """Networks (or balls) per chunk dealt to the threads: CHUNKS_PER_THREAD chunks per thread."""
    return -(-n_items // (CHUNKS_PER_THREAD * num_threads()))


def small_mlp(theta: np.ndarray, x: np.ndarray, labels: np.ndarray, sizes: tuple[int, ...], activation: str,
              scale: float, mode: int, l2: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Summed cross-entropy, correct counts, sum_l ||W_l||^2 and gradients of R small MLPs, (R,) x 3, (R, P).

    ``mode``: ACCURACY (correct counts only; the losses are 0), LOSS, or GRADIENT: then the
    gradient is scale d(sum of cross-entropies)/dtheta + l2 W (the L2 term (l2/2) sum ||W||^2 of
    the mean loss when scale = 1/N); the sums of squared weights are computed when l2 > 0.
    ``theta`` (R, P) uses the flat layout of :class:`gdchaos.nn.MLP`.
    """
    n_nets, n_params = theta.shape
    theta = np.ascontiguousarray(theta)
    loss = np.empty(n_nets)
    correct = np.empty(n_nets, dtype=np.int64)
    penalty = np.empty(n_nets)
    gradient = np.empty((n_nets if mode == GRADIENT else 1, n_params), dtype=theta.dtype)
    deal(_mlp_chunk, n_nets * x.shape[0] * n_params, n_nets, _chunk(n_nets), theta, *_blocked(x, labels),
         np.asarray(sizes, dtype=np.int64), activation_code(activation), scale, l2, mode, loss, correct, penalty,
         gradient)
    return loss, correct, penalty, gradient if mode == GRADIENT else None


def small_train_to_target(theta: np.ndarray, eta: np.ndarray, x: np.ndarray, labels: np.ndarray,
                          x_test: np.ndarray, labels_test: np.ndarray, sizes: tuple[int, ...], activation: str,
                          l2: float, target: float, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch GD (Eq. 1) of each small MLP, in place, until its test accuracy reaches ``target``.

    Network r takes steps theta <- theta - eta_r (grad L(theta)) (L the mean loss plus L2 term) until
    (i) after a step, its accuracy on (x_test, labels_test) is >= ``target`` (REACHED), (ii) the
    loss before a step is not finite (DIVERGED; that step is still applied), or (iii) ``epochs``
    steps. Returns (steps taken (R,), status (R,) RUNNING/REACHED/DIVERGED). Each network runs to
    the end in one thread, with the operations of :func:`small_mlp` then ``gradient_step_``: the
    same bits as stepping it one epoch at a time.
    """
    n_nets, n_params = theta.shape
    if not theta.flags.c_contiguous:
        raise ValueError("theta must be C-contiguous (it is updated in place)")
    steps = np.zeros(n_nets, dtype=np.int64)
    status = np.zeros(n_nets, dtype=np.int64)
    grad = np.empty_like(theta)
    deal(_train_chunk, n_nets * epochs * (x.shape[0] + x_test.shape[0]) * n_params, n_nets, _chunk(n_nets), theta,
         np.ascontiguousarray(eta, dtype=np.float64), *_blocked(x, labels), *_blocked(x_test, labels_test),
         np.asarray(sizes, dtype=np.int64), activation_code(activation), l2, target, epochs, steps, status, grad)
    return steps, status


@njit(inline="always")
def _curvature(a: float, code: int) -> float:
    """act''(z) / act'(z) from the output a = act(z): tanh -2a, sigmoid 1 - 2a, relu 0."""
    if code == 0:
        return -2.0 * a
    if code == 1:
        return 1.0 - 2.0 * a
    return 0.0


@kernel()
def _hvp_scratch(sizes, n_units, n_samples):
    """A thread's work arrays for :func:`_network_hvp`: activations and their R{} (n_units, N), four
    (width, N) arrays for delta and R{delta} of two layers, and per-sample vectors."""
    width = 0
    for layer in range(1, sizes.shape[0]):
        width = max(width, sizes[layer])
    return (np.empty((n_units, n_samples)), np.empty((n_units, n_samples)), np.empty((width, n_samples)),
            np.empty((width, n_samples)), np.empty((width, n_samples)), np.empty((width, n_samples)),
            np.empty(n_samples), np.empty(n_samples), np.empty(n_samples), np.zeros(n_samples))


@kernel(inline="always")
def _network_hvp(p, v, hv, x_t, labels, sizes, act_offsets, param_offsets, code, scale, l2, scratch):
    """hv = H v of network ``p`` along ``v`` (the mean loss times ``scale`` N, plus the L2 term), by the
    R-operator of the pass of :func:`_network` (equations: :class:`gdchaos.nn.mlp_hessian.HessianOperator`)."""
    acts, racts, delta, below, rdelta, rbelow, row_max, total, mean_r, zeros = scratch
    n_samples = x_t.shape[1]
    n_layers = sizes.shape[0] - 1
    n_classes = sizes[n_layers]
    logit0 = act_offsets[n_layers - 1]
    # ---------------------------------------------------------- forward and R-forward
    for layer in range(n_layers):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        w0 = param_offsets[layer]
        b0 = w0 + n_in * n_out
        out0 = act_offsets[layer]
        ins = x_t if layer == 0 else acts[act_offsets[layer - 1]:act_offsets[layer]]
        for j in range(n_out):  # R{z_j} = c_j + sum_k in_k V_kj + sum_k R{in_k} W_kj
            a, ra = acts[out0 + j], racts[out0 + j]
            _weighted_rows(a, p[b0 + j], ins, p, w0 + j, n_out, n_in, n_samples)
            _weighted_rows(ra, v[b0 + j], ins, v, w0 + j, n_out, n_in, n_samples)
            if layer > 0:
                r_ins = racts[act_offsets[layer - 1]:act_offsets[layer]]
                _weighted_rows(row_max, 0.0, r_ins, p, w0 + j, n_out, n_in, n_samples)
                for n in range(n_samples):
                    ra[n] += row_max[n]
            if layer < n_layers - 1:
                activate_row(a, zeros, code, a)
                for n in range(n_samples):  # R{a} = act'(z) R{z}
                    ra[n] *= derivative_from_output(a[n], code)
    # ---------------------------------------------------------- softmax: delta and R{delta}
    for n in range(n_samples):
        row_max[n] = acts[logit0, n]
    for c in range(1, n_classes):
        z = acts[logit0 + c]
        for n in range(n_samples):
            row_max[n] = max(row_max[n], z[n])
    for n in range(n_samples):
        total[n] = 0.0
        mean_r[n] = 0.0
    for c in range(n_classes):
        z, e = acts[logit0 + c], delta[c]
        for n in range(n_samples):
            e[n] = vecmath.exp_nonpositive(z[n] - row_max[n])
            total[n] += e[n]
    for c in range(n_classes):
        e, rz = delta[c], racts[logit0 + c]
        for n in range(n_samples):
            e[n] /= total[n]  # softmax p_c
            mean_r[n] += e[n] * rz[n]
    for c in range(n_classes):
        e, rz, re = delta[c], racts[logit0 + c], rdelta[c]
        for n in range(n_samples):
            re[n] = scale * e[n] * (rz[n] - mean_r[n])  # R{delta} = scale p (R{z} - sum_c p_c R{z_c})
            e[n] *= scale
    for n in range(n_samples):  # delta = scale (softmax - onehot)
        delta[labels[n], n] -= scale
    # ---------------------------------------------------------- backward and R-backward
    for layer in range(n_layers - 1, -1, -1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        w0 = param_offsets[layer]
        b0 = w0 + n_in * n_out
        ins = x_t if layer == 0 else acts[act_offsets[layer - 1]:act_offsets[layer]]
        for j in range(n_out):
            hv[b0 + j] = _sum(rdelta[j], n_samples)
        for k in range(n_in):  # (H v)_W = in^T R{delta} + R{in}^T delta + l2 V
            row = w0 + k * n_out
            for j in range(n_out):
                value = dot(ins[k], rdelta[j], n_samples)
                if layer > 0:
                    value += dot(racts[act_offsets[layer - 1] + k], delta[j], n_samples)
                hv[row + j] = value + l2 * v[row + j]
        if layer == 0:
            break
        for k in range(n_in):
            # G_k = sum_j W_kj delta_j;  R{G_k} = sum_j (W_kj R{delta_j} + V_kj delta_j)
            # delta_k = act' G_k;  R{delta_k} = act' R{G_k} + k(a) R{a_k} G_k
            g, rg = below[k], rbelow[k]
            _weighted_rows(g, 0.0, delta, p, w0 + k * n_out, 1, n_out, n_samples)
            _weighted_rows(rg, 0.0, rdelta, p, w0 + k * n_out, 1, n_out, n_samples)
            _weighted_rows(row_max, 0.0, delta, v, w0 + k * n_out, 1, n_out, n_samples)
            a, ra = ins[k], racts[act_offsets[layer - 1] + k]
            for n in range(n_samples):
                slope = derivative_from_output(a[n], code)
                rg[n] = slope * (rg[n] + row_max[n]) + _curvature(a[n], code) * ra[n] * g[n]
                g[n] *= slope
        delta, below = below, delta
        rdelta, rbelow = rbelow, rdelta


@kernel(nogil=True)
def _hvp_chunk(theta, v, x_t, labels, sizes, code, scale, l2, hv_out, first, stop):
    """:func:`small_hvp` of networks [first, stop)."""
    rows, param_offsets = _layout(sizes)
    act_offsets = rows[1:] - rows[1]  # layer outputs only: the inputs are x_t
    scratch = _hvp_scratch(sizes, act_offsets[-1], x_t.shape[1])
    for r in range(first, stop):
        _network_hvp(theta[r], v[r], hv_out[r], x_t, labels, sizes, act_offsets, param_offsets, code, scale,
                     l2, scratch)


def small_hvp(theta: np.ndarray, v: np.ndarray, x: np.ndarray, labels: np.ndarray, sizes: tuple[int, ...],
              activation: str, l2: float = 0.0) -> np.ndarray:
    """H_r v_r (R, P) of R small MLPs, H the Hessian of the mean loss plus (l2/2) sum ||W||^2: the
    R-operator of :func:`small_mlp`'s pass, each network whole on one thread (exact, no differences)."""
    n_nets, n_params = theta.shape
    hv = np.empty((n_nets, n_params))
    deal(_hvp_chunk, 3 * n_nets * x.shape[0] * n_params, n_nets, _chunk(n_nets),
         np.ascontiguousarray(theta, dtype=np.float64), np.ascontiguousarray(v, dtype=np.float64), _transposed(x),
         np.ascontiguousarray(labels), np.asarray(sizes, dtype=np.int64), activation_code(activation),
         1.0 / x.shape[0], l2, hv)
    return hv


class BallRecords(NamedTuple):
    """Observables of :func:`small_train_balls`, one row per recorded epoch k."""

    loss: np.ndarray  # (K, R) summed cross-entropy
    correct: np.ndarray  # (K, R) correct counts on the training set
    penalty: np.ndarray  # (K, R) sum_l ||W_l||^2 (0 when l2 = 0)
    test_correct: np.ndarray  # (K, n_balls) correct counts of each reference on the test set
    distances: np.ndarray  # (K, n_balls * (ball - 1), n_segments) L1 distances of each replica to its reference
    references: np.ndarray | None  # (K, n_balls, P) parameters of each reference, when asked


def small_train_balls(theta: np.ndarray, eta: np.ndarray, grad: np.ndarray, x: np.ndarray, labels: np.ndarray,
                      x_test: np.ndarray, labels_test: np.ndarray, sizes: tuple[int, ...], activation: str,
                      l2: float, ball: int, bounds: np.ndarray, records: int, first_update: bool,
                      grad_last: bool, keep_references: bool = False) -> BallRecords:
    """``records`` epochs of full-batch GD of balls of small MLPs (networks [b ball, (b+1) ball), the
    reference first), each ball trained by one thread, in place.

    For each recorded epoch: every network's loss, correct count (and, but after the last record
    only with ``grad_last``, its gradient, kept in ``grad`` (R, P)); each reference's test correct
    count; each replica's per-segment L1 distance to its reference (``bounds`` (S+1,) split the
    parameter axis); then the update theta <- theta - eta grad (Eq. 1), except after the last
    record. ``first_update`` applies the update held in ``grad`` first (the previous call's last
    record). The operations are those of :func:`small_mlp`, ``gradient_step_`` and ``l1_distances``:
    the same bits as one epoch at a time.
    """
    n_nets, n_params = theta.shape
    if not theta.flags.c_contiguous or grad.shape != theta.shape or n_nets % ball:
        raise ValueError("theta must be C-contiguous, grad of its shape, and hold whole balls")
    n_balls = n_nets // ball
    out = BallRecords(np.empty((records, n_nets)), np.empty((records, n_nets), dtype=np.int64),
                      np.empty((records, n_nets)), np.zeros((records, n_balls), dtype=np.int64),
                      np.empty((records, n_balls * (ball - 1), len(bounds) - 1)),
                      np.empty((records if keep_references else 0, n_balls, n_params), dtype=theta.dtype))
    deal(_balls_chunk, n_nets * records * (x.shape[0] + x_test.shape[0]) * n_params, n_balls, _chunk(n_balls),
         theta, np.ascontiguousarray(eta, dtype=np.float64), grad, *_blocked(x, labels),
         *_blocked(x_test, labels_test), np.asarray(sizes, dtype=np.int64),
         activation_code(activation), l2, ball, np.asarray(bounds, dtype=np.int64), first_update, grad_last,
         out.loss, out.correct, out.penalty, out.test_correct, out.distances, out.references)
    return out if keep_references else out._replace(references=None)
