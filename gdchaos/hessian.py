"""Exact Hessian-vector products of the training loss and the sharpness (top Hessian eigenvalue).

H v is computed by Pearlmutter's R-operator, R{f} = d/dt f(theta + t v)|_{t=0}, applied to the
forward and backward pass of :class:`~gdchaos.model.MLP` (forward-over-reverse), for all R networks
of a batch at once: R{grad L} = H v. The sharpness is the largest algebraic eigenvalue of H, found
by power iteration on H v (paper Appendix C; edge of stability at 2/eta). See docs/sharpness.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from gdchaos import backend
from gdchaos.errors import GdchaosError
from gdchaos.model import DEFAULT_MEMORY_BUDGET, MLP, _first_layer_matrix


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
        if theta.ndim != 2 or theta.shape[1] != model.n_params:
            raise GdchaosError(f"theta: expected shape (R, {model.n_params}), got {theta.shape}")
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


def hessian_vector_product(model: MLP, theta: np.ndarray, v: np.ndarray, x: np.ndarray,
                           y: np.ndarray, *, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                           ) -> np.ndarray:
    """H_r v_r for every network r, (R, P): H_r = Hessian of the full loss L (L2 term included).

    Exact, by the R-operator (see :meth:`HessianOperator.__call__` for the equations); samples are
    split into chunks so that the arrays fit in ``memory_budget`` bytes.
    """
    return HessianOperator(model, theta, x, y, memory_budget=memory_budget)(v)


def top_eigenvalue(model: MLP, theta: np.ndarray, x: np.ndarray, y: np.ndarray, *,
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
        operator = HessianOperator(model, theta[finite], x, y, memory_budget=memory_budget)
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


def _check_arguments(model: MLP, theta: np.ndarray, x: np.ndarray, y: np.ndarray,
                     v0: np.ndarray | None, tol: float, max_iter: int, subset: int | None) -> None:
    """Raise ``GdchaosError`` on bad arguments of :func:`top_eigenvalue`."""
    if theta.ndim != 2 or theta.shape[1] != model.n_params:
        raise GdchaosError(f"theta: expected shape (R, {model.n_params}), got {theta.shape}")
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
