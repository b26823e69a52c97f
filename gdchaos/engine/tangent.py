"""Tangent-space Lyapunov exponents: the eps -> 0 limit of the eps-ball (docs/tangent.md).

The GD map theta -> theta - eta grad L(theta) has the Jacobian J_t = I - eta H(theta_t), with H at
theta_t, the point before the step. A tangent vector follows v_{t+1} = J_t v_t exactly, by one
Hessian-vector product per vector and epoch (:class:`HessianProducts`), renormalised
so that it never overflows:

- :class:`TangentCurve`: one vector per reference, from the first replica's perturbation xi_1;
  ln ||Phi_t xi_1||_1 (the L1 norm of d(t)), so it equals ln d_1(t) while the ball is small;
- :class:`TangentSpectrum`: K vectors per reference, re-orthonormalised by QR every m epochs; the
  finite-time exponents (1/T) sum ln |R_kk| (L2 norm) and the largest condition number seen.

Both are batched over the network axis: the references of all learning rates and initial conditions
of a unit are one operator and one product per epoch. Non-finite values (divergence) give NaN from
that epoch on.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gdchaos.nn import MLP, HessianOperator, Network, hessian_operator

# (vectors (n, P), rows (n,) reference of each vector) -> H v of each vector at its reference
Product = Callable[[np.ndarray, np.ndarray], np.ndarray]
SPECTRUM_SEED_KEY = 2  # SeedSequence([seed, ic, 2]): the spectrum's vectors 2..K


def tangent_map(v: np.ndarray, hv: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """J_t v = v - eta H(theta_t) v for each row (``eta`` one value per row)."""
    return v - eta[:, None] * hv


class HessianProducts:
    """The :data:`Product` at the successive points theta_t of one run, exact (R-operator); small MLPs
    take the whole-network kernel. Each epoch's MLP operator takes over the arrays of the previous
    one (``HessianOperator(reuse=)``: hundreds of MB on MNIST), which is spent by then."""

    def __init__(self, model: Network, x: np.ndarray, y: np.ndarray, memory_budget: int) -> None:
        self.model, self.x, self.y, self.memory_budget = model, x, y, memory_budget
        self._last: HessianOperator | None = None

    def at(self, theta: np.ndarray) -> Product:
        """The product of the networks ``theta`` (R, P); the previous one, spent, would recompute on
        every call."""
        if isinstance(self.model, MLP):
            operator = self._last = HessianOperator(self.model, theta, self.x, self.y, memory_budget=self.memory_budget,
                                                    whole_network=True, reuse=self._last)
        else:
            operator = hessian_operator(self.model, theta, self.x, self.y, memory_budget=self.memory_budget)
        every = np.arange(theta.shape[0])

        def product(v: np.ndarray, rows: np.ndarray) -> np.ndarray:
            return operator(v, None if np.array_equal(rows, every) else rows)  # None: no copy of the linearisation
        return product


class TangentCurve:
    """ln ||Phi_t xi||_1 of one tangent vector per network, renormalised (L1) every epoch.

    ``xi`` (R, P): the initial perturbations (the first replica's, theta_1(0) - theta_0(0)).
    :attr:`log_norm` (R,) is ln ||Phi_t xi||_1 after ``t`` calls of :meth:`step`; NaN once a vector,
    or its network, is not finite.
    """

    def __init__(self, xi: np.ndarray) -> None:
        norm = np.abs(xi).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.log_norm = np.where(norm > 0, np.log(norm), np.nan)
            self.vector = xi / norm[:, None]

    def stop(self, networks: np.ndarray) -> None:
        """The ``networks`` are no longer finite: NaN from now on."""
        self.log_norm[networks] = np.nan
        self.vector[networks] = np.nan

    def step(self, product: Product, eta: np.ndarray, live: np.ndarray) -> None:
        """v <- J_t v / ||J_t v||_1, ln ||J_t v||_1 accumulated, for the networks ``live`` (sorted);
        ``product`` is evaluated at theta_t of those networks, in the order of ``live``."""
        self.stop(np.setdiff1d(np.arange(self.log_norm.size), live))
        if not live.size:
            return
        with np.errstate(all="ignore"):
            moved = tangent_map(self.vector[live], product(self.vector[live], np.arange(live.size)), eta[live])
            norm = np.abs(moved).sum(axis=1)
            ok = np.isfinite(norm) & (norm > 0)
            self.log_norm[live] = np.where(ok, self.log_norm[live] + np.log(norm), np.nan)
            self.vector[live] = moved / np.where(ok, norm, np.nan)[:, None]


class TangentSpectrum:
    """The top-K finite-time Lyapunov exponents of each network (Benettin's QR method, L2 norm).

    ``vectors`` (R, K, P): the initial tangent vectors, linearly independent; they are
    orthonormalised first, and that first QR does not count. Every ``qr_every`` epochs (and at the
    end, :meth:`exponents`) W = [v_1 ... v_K] = Q R; ln |R_kk| is accumulated and v <- Q.
    """

    def __init__(self, vectors: np.ndarray, qr_every: int = 1) -> None:
        self.qr_every = qr_every
        self.epochs = 0
        self.since_qr = 0
        n_nets, k, _ = vectors.shape
        self.log_growth = np.zeros((n_nets, k))
        self.condition = np.ones(n_nets)  # max |R_kk| / min |R_kk| over the QRs: a lower bound of cond_2
        self.vectors, _ = self._orthonormalise(np.array(vectors, dtype=np.float64))

    def step(self, product: Product, eta: np.ndarray, live: np.ndarray) -> None:
        """v_k <- J_t v_k for every vector of the networks ``live``; a QR every ``qr_every`` epochs."""
        n_nets, k, n_params = self.vectors.shape
        self.vectors[np.setdiff1d(np.arange(n_nets), live)] = np.nan
        if live.size:
            v = self.vectors[live].reshape(-1, n_params)
            rows = np.repeat(np.arange(live.size), k)
            with np.errstate(all="ignore"):
                moved = tangent_map(v, product(v, rows), np.repeat(eta[live], k))
            self.vectors[live] = moved.reshape(live.size, k, n_params)
        self.epochs += 1
        self.since_qr += 1
        if self.since_qr == self.qr_every:
            self._accumulate()

    def exponents(self) -> np.ndarray:
        """(R, K) finite-time exponents (1/t) sum ln |R_kk| over the epochs stepped so far."""
        if self.since_qr:
            self._accumulate()
        with np.errstate(invalid="ignore"):
            return self.log_growth / max(self.epochs, 1)

    def _accumulate(self) -> None:
        self.vectors, diagonal = self._orthonormalise(self.vectors)
        with np.errstate(all="ignore"):
            self.log_growth += np.log(diagonal)
            ratio = diagonal.max(axis=1) / diagonal.min(axis=1)
        self.condition = np.where(np.isfinite(ratio), np.fmax(self.condition, ratio), np.nan)
        self.since_qr = 0

    @staticmethod
    def _orthonormalise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Q (R, K, P) of the QR of every network's vectors and |diag R| (R, K); NaN where not finite."""
        finite = np.all(np.isfinite(vectors), axis=(1, 2))
        q = np.full_like(vectors, np.nan)
        diagonal = np.full(vectors.shape[:2], np.nan)
        if finite.any():
            factor_q, factor_r = np.linalg.qr(vectors[finite].transpose(0, 2, 1))
            diagonal[finite] = np.abs(np.diagonal(factor_r, axis1=1, axis2=2))
            q[finite] = factor_q.transpose(0, 2, 1)
        return q, diagonal


def spectrum_vectors(xi: np.ndarray, k: int, seed: int, ics: range) -> np.ndarray:
    """(n_ic, K, P) initial vectors of the spectrum: xi_1 of each IC first, then K-1 Gaussian vectors
    drawn from SeedSequence([seed, ic, SPECTRUM_SEED_KEY])."""
    n_ic, n_params = xi.shape
    vectors = np.empty((n_ic, k, n_params))
    vectors[:, 0] = xi
    for row, ic in enumerate(ics):
        vectors[row, 1:] = np.random.default_rng([seed, ic, SPECTRUM_SEED_KEY]).standard_normal((k - 1, n_params))
    return vectors
