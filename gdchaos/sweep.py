"""eps-ball sweeps over learning rates (PROTOCOL sections 1-4), split into self-contained units.

A unit of work is (a range of learning rates, a range of initial conditions). Its networks are
laid out on one network axis, learning rate outermost, then initial condition, then the
reference followed by its M replicas::

    r = ((e * n_ic) + i) * (M + 1) + j        (j = 0: reference, j = 1..M: replicas)

Seeds are derived per initial condition, never from global state: initial condition i (weights
~ N(0, init_std^2), biases 0) comes from SeedSequence([seed, i, 0]) and its replicas' perturbations
U(-eps, eps) from SeedSequence([seed, i, 1]). So the same q initial conditions and the same balls
are used at every learning rate (curves across eta are comparable) and a unit can run anywhere.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from gdchaos.config import SweepConfig
from gdchaos.errors import GdchaosError
from gdchaos.hessian import top_eigenvalue
from gdchaos.model import MLP
from gdchaos.results import NEVER, NOT_COMPUTED, Unit
from gdchaos.train import next_call_epochs, train_balls, train_to_target

MAX_NETWORKS_PER_UNIT = 8192
TAU_ARRAYS = ("reached_epoch", "diverged_epoch")  # the only arrays the tau phase changes


IMAGE_SHAPES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32), "digits": (1, 8, 8)}


def build_model(config: SweepConfig, n_features: int, n_classes: int):
    """The network a config describes (MLP or CNN), for data with ``n_features`` inputs and ``n_classes``."""
    spec = config.model
    if spec.kind == "cnn":
        from gdchaos.cnn import CNN

        if config.dataset not in IMAGE_SHAPES:
            raise GdchaosError(f"model.kind: cnn needs an image dataset ({', '.join(IMAGE_SHAPES)}); "
                               f"got {config.dataset!r}")
        return CNN(input_shape=IMAGE_SHAPES[config.dataset], layers=spec.layers, n_classes=n_classes,
                   init_std=spec.init_std, l2=spec.l2, dtype=config.dtype)
    return MLP((n_features, *spec.hidden, n_classes), activation=spec.activation, l2=spec.l2,
               init_std=spec.init_std, dtype=config.dtype)


def plan_units(config: SweepConfig, model, n_samples: int) -> list[Unit]:
    """Split the sweep into units whose activations fit the memory budget.

    Small models batch several learning rates and initial conditions into one network axis (one
    kernel call serves them all); large ones get one learning rate and few initial conditions per
    unit. ``ics_per_unit`` / ``etas_per_unit`` override the automatic choice.
    """
    ball = config.replicas + 1
    n_eta = len(config.etas)
    budget = config.memory_budget_mb * 2**20
    # networks whose activations on all samples fit the budget at once
    fitting = model.chunk_size(1, budget) // max(1, n_samples)
    capacity = int(min(MAX_NETWORKS_PER_UNIT, max(ball, fitting)))
    etas_per_unit = config.etas_per_unit or (n_eta if capacity >= n_eta * ball else 1)
    etas_per_unit = min(etas_per_unit, n_eta)
    ics_per_unit = config.ics_per_unit or max(1, capacity // (etas_per_unit * ball))
    ics_per_unit = min(ics_per_unit, config.ics)
    units = []
    for eta_start in range(0, n_eta, etas_per_unit):
        for ic_start in range(0, config.ics, ics_per_unit):
            units.append(Unit(len(units), eta_start, min(eta_start + etas_per_unit, n_eta), ic_start,
                              min(ic_start + ics_per_unit, config.ics)))
    return units


def initial_conditions(model, config: SweepConfig, ic_start: int, ic_stop: int) -> np.ndarray:
    """Balls of initial conditions ic_start..ic_stop-1: (n_ic, M+1, P), reference first.

    Replica j of IC i is theta_i(0) + xi, xi ~ U(-eps, eps) on every weight (and on biases when
    ``perturb_biases``), so d_j(0) ~ eps * N_perturbed / 2 in L1.
    """
    mask = np.ones(model.n_params, dtype=bool) if config.perturb_biases else model.weight_mask()
    balls = np.empty((ic_stop - ic_start, config.replicas + 1, model.n_params), dtype=model.dtype)
    for row, ic in enumerate(range(ic_start, ic_stop)):
        reference = model.init(np.random.default_rng([config.seed, ic, 0]), 1)[0]
        noise = np.random.default_rng([config.seed, ic, 1]).uniform(
            -config.eps, config.eps, size=(config.replicas, int(mask.sum())))
        balls[row] = reference
        balls[row, 1:, mask] += noise.T.astype(model.dtype)
    return balls


@dataclass
class UnitProgress:
    """Emitted while a unit trains: phase ``"ball"`` (epochs 0..T) or ``"tau"`` (references only)."""

    phase: str
    epoch: int
    arrays: dict[str, np.ndarray]
    active: int  # networks still training
    trajectory: tuple[int, np.ndarray] | None = None  # (column, parameters (ne, ni, M+1, P)) to store
    changed: tuple[str, ...] | None = None  # the arrays this event changed (None: all of them)


def run_unit(model, config: SweepConfig, unit: Unit, data, balls: np.ndarray) -> Iterator[UnitProgress]:
    """Train one unit; yields progress after every epoch, the arrays filled up to that epoch.

    Arrays (n_eta_unit, n_ic_unit, ...): ``distances`` (M, T+1) L1 distance of each replica to its
    reference; ``layer_distances`` (M, n_tensors, T+1) the same per parameter tensor; ``loss``, ``train_accuracy``, ``test_accuracy`` (T+1) of the reference;
    ``reached_epoch`` first epoch with test accuracy >= target (-1: not within ``tau_epochs``);
    ``diverged_epoch`` (M+1) first epoch with a non-finite loss (-1: never).
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
    for record in train_balls(model, theta, eta, x, y, epochs, ball, x_test=x_test, y_test=y_test,
                              stops=(*sharpness_epochs, *trajectory_epochs),
                              memory_budget=config.memory_budget_mb * 2**20):
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
        snapshot = None
        if t in trajectory_epochs:  # streamed to the file by the runner, never kept in memory
            snapshot = (trajectory_epochs.index(t), theta.reshape(ne, ni, ball, model.n_params))
        yield UnitProgress("ball", t, arrays, theta.shape[0], snapshot)
    yield from _train_to_target(model, config, theta[refs], eta[refs], data, reached,
                                diverged[refs], arrays)


def _record_sharpness(model, config, references, x, y, warm_start, arrays, column):
    """Top Hessian eigenvalue of every reference (warm-started power iteration), into ``arrays``."""
    result = top_eigenvalue(model, references, x, y, v0=warm_start, tol=config.sharpness_tol,
                            max_iter=config.sharpness_max_iter, subset=config.sharpness_subset or None,
                            seed=config.seed, memory_budget=config.memory_budget_mb * 2**20)
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
    budget = config.memory_budget_mb * 2**20
    epoch = config.epochs
    active = np.flatnonzero((reached == NEVER) & (ref_diverged == NEVER))
    steps = 1
    while active.size and epoch < config.tau_epochs:
        steps = min(steps, config.tau_epochs - epoch)
        sub = theta[active]
        started = time.perf_counter()
        run = train_to_target(model, sub, eta[active], x, y, x_test, y_test, target=config.target,
                              epochs=steps, memory_budget=budget)
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
