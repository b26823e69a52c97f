"""Sharpness: the top Hessian eigenvalue of every network of a batch (paper Appendix C).

Power iteration on exact Hessian-vector products (:func:`gdchaos.nn.hessian.hessian_operator`), for the
largest *algebraic* eigenvalue (edge of stability at 2/eta). See docs/sharpness.md.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gdchaos.checks import check_int, check_positive
from gdchaos.errors import GdchaosError
from gdchaos.nn.base import DEFAULT_MEMORY_BUDGET, Network
from gdchaos.nn.hessian import hessian_operator
from gdchaos.nn.mlp import MLP
from gdchaos.nn.mlp_hessian import HessianOperator


@dataclass
class SharpnessResult:
    """Top Hessian eigenvalue of every network of a batch."""

    eigenvalue: np.ndarray  # (R,) largest algebraic eigenvalue; NaN for non-finite networks
    vector: np.ndarray  # (R, P) unit-norm eigenvector estimate, the warm start of the next call
    iterations: np.ndarray  # (R,) int, Hessian-vector products spent on each network
    converged: np.ndarray  # (R,) bool, relative change of the Rayleigh quotient reached ``tol``


def top_eigenvalue(model: Network, theta: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                   v0: np.ndarray | None = None, tol: float = 1e-6, max_iter: int = 100,
                   subset: int | None = None, seed: int = 0,
                   memory_budget: int = DEFAULT_MEMORY_BUDGET, whole_network: bool = False) -> SharpnessResult:
    """Sharpness lambda_max(H_r) of every network r by power iteration on exact H v.

    Phase 1: v <- H v / ||H v|| until the Rayleigh quotient mu = v^T H v (||v|| = 1) changes by at
    most ``tol`` |mu| between two products; mu is the eigenvalue of largest magnitude. Where mu < 0,
    phase 2 iterates on H - mu I (spectrum shifted into [0, lambda_max - mu]) from the start vector
    made orthogonal to phase 1's vector, giving the largest algebraic eigenvalue lambda_max.
    Networks that converge are frozen; ``max_iter`` caps each phase. ``v0`` (R, P), e.g. the
    previous call's ``vector``, warm-starts; otherwise the start is Gaussian from ``seed``.
    ``subset`` uses that many training samples drawn without replacement from ``seed``.
    Networks with non-finite parameters get eigenvalue NaN, converged False, iterations 0.
    ``whole_network``: small MLPs take the whole-network kernel (:class:`HessianOperator`; equal to
    round-off, not bit for bit, so off by default).
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
        if whole_network and isinstance(model, MLP):
            operator = HessianOperator(model, theta[finite], x, y, memory_budget=memory_budget, whole_network=True)
        else:
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


def _check_arguments(model: Network, theta: np.ndarray, x: np.ndarray, y: np.ndarray,
                     v0: np.ndarray | None, tol: float, max_iter: int, subset: int | None) -> None:
    """Raise ``GdchaosError`` on bad arguments of :func:`top_eigenvalue`."""
    model.check_theta(theta)
    model.check_data(x, y)
    if v0 is not None:
        if np.shape(v0) != theta.shape:
            raise GdchaosError(f"v0: must be of shape {theta.shape} like theta; got {np.shape(v0)}")
        norms = np.linalg.norm(v0, axis=1)
        if not np.all(np.isfinite(norms) & (norms > 0)):
            raise GdchaosError("v0: every row must be finite and nonzero")
    check_positive("tol", tol)
    check_int("max_iter", max_iter, 1)
    if subset is not None:
        check_int("subset", subset, 1, x.shape[0])
