"""One unit of an eps-ball sweep (docs/protocol.md): its balls trained to T, then its references to the target.

:func:`run_unit` is all a process needs to compute a unit anywhere: the model, the config, the unit,
the data and its balls (:func:`gdchaos.engine.units.initial_conditions`); it yields the unit's
arrays as they fill, and whoever runs it decides where they go (:mod:`gdchaos.runner` writes them).
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from gdchaos.analysis.fields import NEVER, NOT_COMPUTED
from gdchaos.config import SweepConfig
from gdchaos.engine.tangent import HessianProducts, TangentCurve, TangentSpectrum, spectrum_vectors
from gdchaos.engine.train import next_call_epochs, train_balls, train_to_target
from gdchaos.engine.units import Unit
from gdchaos.nn import Network, top_eigenvalue

TAU_ARRAYS = ("reached_epoch", "diverged_epoch")  # the only arrays the tau phase changes


@dataclass
class UnitProgress:
    """Emitted while a unit trains: phase ``"ball"`` (epochs 0..T) or ``"tau"`` (references only)."""

    phase: str
    epoch: int
    arrays: dict[str, np.ndarray]
    active: int  # networks still training
    trajectory: tuple[int, np.ndarray] | None = None  # (column, parameters (ne, ni, M+1, P)) to store
    changed: tuple[str, ...] | None = None  # the arrays this event changed (None: all of them)


def run_unit(model: Network, config: SweepConfig, unit: Unit, data, balls: np.ndarray) -> Iterator[UnitProgress]:
    """Train one unit; yields progress after every epoch, the arrays filled up to that epoch.

    Arrays (n_eta_unit, n_ic_unit, ...): ``distances`` (M, T+1) L1 distance of each replica to its
    reference; ``layer_distances`` (M, n_tensors, T+1) the same per parameter tensor; ``loss``, ``train_accuracy``, ``test_accuracy`` (T+1) of the reference;
    ``reached_epoch`` first epoch with test accuracy >= target (-1: not within ``tau_epochs``);
    ``diverged_epoch`` (M+1) first epoch with a non-finite loss (-1: never). With ``tangent``:
    ``tangent_log_distance`` (T+1) ln ||Phi_t xi_1||_1; with ``tangent_k`` K: ``lyapunov_spectrum``
    (K) and ``tangent_condition`` (:mod:`gdchaos.engine.tangent`).
    """
    x, y, x_test, y_test = data
    ne, ni = unit.eta_stop - unit.eta_start, unit.ic_stop - unit.ic_start
    m, epochs = config.replicas, config.epochs
    ball = m + 1
    theta = np.broadcast_to(balls, (ne, ni, ball, model.n_params)).reshape(-1, model.n_params).copy()
    etas = np.asarray(config.etas[unit.eta_start:unit.eta_stop], dtype=np.float64)
    eta = np.repeat(etas, ni * ball)
    refs = np.arange(0, theta.shape[0], ball)
    arrays = {
        "distances": np.full((ne, ni, m, epochs + 1), np.nan),
        "layer_distances": np.full((ne, ni, m, len(model.layout()), epochs + 1), np.nan),
        "loss": np.full((ne, ni, epochs + 1), np.nan),
        "train_accuracy": np.full((ne, ni, epochs + 1), np.nan),
        "test_accuracy": np.full((ne, ni, epochs + 1), np.nan),
        "reached_epoch": np.full((ne, ni), NOT_COMPUTED, dtype=np.int32),
        "diverged_epoch": np.full((ne, ni, ball), NEVER, dtype=np.int32),
    }
    reached = np.full(ne * ni, NEVER, dtype=np.int32)
    diverged = arrays["diverged_epoch"].reshape(-1)
    sharpness_epochs = config.sharpness_epochs()
    if sharpness_epochs:
        arrays["sharpness"] = np.full((ne, ni, len(sharpness_epochs)), np.nan)
        arrays["sharpness_iterations"] = np.zeros((ne, ni, len(sharpness_epochs)), dtype=np.int32)
    warm_start = None
    trajectory_epochs = config.trajectory_epochs()
    tangents = _tangents(config, unit, theta.reshape(ne, ni, ball, model.n_params), arrays)
    products = HessianProducts(model, x, y, config.memory_budget_bytes) if tangents else None
    for record in train_balls(model, theta, eta, x, y, epochs, ball, x_test=x_test, y_test=y_test,
                              stops=(*sharpness_epochs, *trajectory_epochs), keep_references=bool(tangents),
                              memory_budget=config.memory_budget_bytes):
        t = record.epoch
        arrays["distances"][..., t] = record.distances.reshape(ne, ni, m)
        arrays["layer_distances"][..., t] = record.tensor_distances.reshape(ne, ni, m, -1)
        arrays["loss"][..., t] = record.loss[refs].reshape(ne, ni)
        arrays["train_accuracy"][..., t] = record.train_accuracy[refs].reshape(ne, ni)
        arrays["test_accuracy"][..., t] = record.test_accuracy.reshape(ne, ni)
        diverged[(diverged == NEVER) & ~np.isfinite(record.loss)] = t
        reached[(reached == NEVER) & (record.test_accuracy >= config.target)] = t
        if t in sharpness_epochs:
            warm_start = _record_sharpness(model, config, theta[refs], x, y, warm_start, arrays,
                                           sharpness_epochs.index(t))
        if tangents:
            _step_tangents(products, config, tangents, record.references, eta[refs], record.loss[refs], t, arrays)
        snapshot = None
        if t in trajectory_epochs:  # streamed to the file by the runner, never kept in memory
            snapshot = (trajectory_epochs.index(t), theta.reshape(ne, ni, ball, model.n_params))
        yield UnitProgress("ball", t, arrays, theta.shape[0], snapshot)
    yield from _train_to_target(model, config, theta[refs], eta[refs], data, reached,
                                diverged[refs], arrays)


def _tangents(config: SweepConfig, unit: Unit, balls: np.ndarray, arrays: dict) -> tuple:
    """The tangent curve and spectrum of the unit's references (None where off), their arrays in ``arrays``.

    Both start from the first replica's perturbation xi_1 = theta_1(0) - theta_0(0) of each ball.
    """
    if not (config.tangent or config.tangent_k):
        return ()
    ne, ni, _, n_params = balls.shape
    xi = (balls[:, :, 1] - balls[:, :, 0]).reshape(-1, n_params)
    curve = spectrum = None
    if config.tangent:
        curve = TangentCurve(xi)
        arrays["tangent_log_distance"] = np.full((ne, ni, config.epochs + 1), np.nan)
    if config.tangent_k:
        first = spectrum_vectors(xi[:ni], config.tangent_k, config.seed, range(unit.ic_start, unit.ic_stop))
        spectrum = TangentSpectrum(np.broadcast_to(first, (ne, *first.shape)).reshape(ne * ni, *first.shape[1:]),
                                   config.tangent_qr_every)
        arrays["lyapunov_spectrum"] = np.full((ne, ni, config.tangent_k), np.nan)
        arrays["tangent_condition"] = np.full((ne, ni), np.nan)
    return curve, spectrum


def _step_tangents(products, config, tangents, references, eta, loss, t, arrays) -> None:
    """Record the tangents at epoch t, then apply J_t = I - eta H(theta_t) (one product per vector)."""
    curve, spectrum = tangents
    live = np.flatnonzero(np.isfinite(loss))
    shape = arrays["loss"].shape[:2]
    if curve is not None:
        curve.stop(np.flatnonzero(~np.isfinite(loss)))
        arrays["tangent_log_distance"][..., t] = curve.log_norm.reshape(shape)
    if t < config.epochs:
        product = None
        if live.size:
            with np.errstate(all="ignore"):
                product = products.at(references[live])
        for tangent in tangents:
            if tangent is not None:
                tangent.step(product, eta, live)
    elif spectrum is not None:
        arrays["lyapunov_spectrum"][...] = spectrum.exponents().reshape(*shape, -1)
        arrays["tangent_condition"][...] = spectrum.condition.reshape(shape)


def _record_sharpness(model, config, references, x, y, warm_start, arrays, column):
    """Top Hessian eigenvalue of every reference (warm-started power iteration), into ``arrays``."""
    result = top_eigenvalue(model, references, x, y, v0=warm_start, tol=config.sharpness_tol,
                            max_iter=config.sharpness_max_iter, subset=config.sharpness_subset or None,
                            seed=config.seed, memory_budget=config.memory_budget_bytes)
    shape = arrays["sharpness"].shape[:2]
    arrays["sharpness"][..., column] = result.eigenvalue.reshape(shape)
    arrays["sharpness_iterations"][..., column] = result.iterations.reshape(shape)
    return result.vector


def _train_to_target(model, config, theta, eta, data, reached, ref_diverged, arrays):
    """Keep training the references past T until each reaches the target test accuracy.

    Calls of :func:`train_to_target` are sized by :func:`next_call_epochs` (progress and Ctrl-C
    stay responsive); the result does not depend on their size.
    """
    x, y, x_test, y_test = data
    epoch = config.epochs
    active = np.flatnonzero((reached == NEVER) & (ref_diverged == NEVER))
    steps = 1
    while active.size and epoch < config.tau_epochs:
        steps = min(steps, config.tau_epochs - epoch)
        sub = theta[active]
        started = time.perf_counter()
        run = train_to_target(model, sub, eta[active], x, y, x_test, y_test, target=config.target,
                              epochs=steps, memory_budget=config.memory_budget_bytes)
        elapsed = time.perf_counter() - started
        theta[active] = sub
        ref_diverged[active[run.diverged]] = epoch + run.steps[run.diverged] - 1
        reached[active[run.reached]] = epoch + run.steps[run.reached]
        active = active[~run.reached & ~run.diverged]
        epoch += steps
        steps = next_call_epochs(steps, elapsed)
        arrays["reached_epoch"][...] = _pending(reached, active).reshape(arrays["reached_epoch"].shape)
        yield UnitProgress("tau", epoch, arrays, active.size, changed=TAU_ARRAYS)
    arrays["reached_epoch"][...] = reached.reshape(arrays["reached_epoch"].shape)
    arrays["diverged_epoch"][..., 0] = ref_diverged.reshape(arrays["diverged_epoch"].shape[:2])
    yield UnitProgress("done", epoch, arrays, 0, changed=TAU_ARRAYS)


def _pending(reached: np.ndarray, active: np.ndarray) -> np.ndarray:
    """reached_epoch with still-training references marked NOT_COMPUTED."""
    out = reached.copy()
    out[active] = NOT_COMPUTED
    return out
