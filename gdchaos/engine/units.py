"""Self-contained units of work: which networks a unit trains, and the seeds that make it reproducible.

A unit is (a range of learning rates, a range of initial conditions). Its networks are laid out on
one network axis, learning rate outermost, then initial condition, then the reference followed by
its M replicas::

    r = ((e * n_ic) + i) * (M + 1) + j        (j = 0: reference, j = 1..M: replicas)

Seeds are derived per initial condition, never from global state: initial condition i (weights
~ N(0, init_std^2), biases 0) comes from SeedSequence([seed, i, 0]) and its replicas' perturbations
U(-eps, eps) from SeedSequence([seed, i, 1]). So the same q initial conditions and the same balls
are used at every learning rate (curves across eta are comparable) and a unit can run anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gdchaos.config import SweepConfig
from gdchaos.nn import Network

MAX_NETWORKS_PER_UNIT = 8192


@dataclass(frozen=True)
class Unit:
    """A self-contained unit of work: learning rates [eta_start, eta_stop) x ICs [ic_start, ic_stop)."""

    index: int
    eta_start: int
    eta_stop: int
    ic_start: int
    ic_stop: int

    @property
    def size(self) -> int:
        """(learning rate, initial condition) pairs, i.e. eps-balls, of the unit."""
        return (self.eta_stop - self.eta_start) * (self.ic_stop - self.ic_start)


def plan_units(config: SweepConfig, model: Network, n_samples: int) -> list[Unit]:
    """Split the sweep into units whose activations fit the memory budget.

    Small models batch several learning rates and initial conditions into one network axis (one
    kernel call serves them all); large ones get one learning rate and few initial conditions per
    unit. ``ics_per_unit`` / ``etas_per_unit`` override the automatic choice.
    """
    n_eta = len(config.etas)
    etas_per_unit, ics_per_unit = unit_shape(config, model, n_samples)
    units = []
    for eta_start in range(0, n_eta, etas_per_unit):
        for ic_start in range(0, config.ics, ics_per_unit):
            units.append(Unit(len(units), eta_start, min(eta_start + etas_per_unit, n_eta), ic_start,
                              min(ic_start + ics_per_unit, config.ics)))
    return units


def unit_shape(config: SweepConfig, model: Network, n_samples: int) -> tuple[int, int]:
    """(learning rates, initial conditions) of a full unit of :func:`plan_units`.

    A unit holds the networks whose activations on all samples fit the memory budget at once, and
    at least ``model.networks_per_call`` references where there are that many (larger models
    evaluate in chunks of samples): past epoch T only the references train, and they train together.
    """
    ball = config.replicas + 1
    n_eta = len(config.etas)
    # networks whose activations on all samples fit the budget at once
    fitting = model.chunk_size(1, config.memory_budget_bytes) // max(1, n_samples)
    references = min(model.networks_per_call(n_samples), config.ics * n_eta)
    capacity = int(min(MAX_NETWORKS_PER_UNIT, max(ball * references, fitting)))
    # every learning rate in one unit, or as many as hold all the initial conditions, or one
    etas_per_unit = config.etas_per_unit or (
        n_eta if capacity >= n_eta * ball else max(1, min(n_eta, capacity // (ball * config.ics))))
    etas_per_unit = min(etas_per_unit, n_eta)
    ics_per_unit = config.ics_per_unit or max(1, capacity // (etas_per_unit * ball))
    return etas_per_unit, min(ics_per_unit, config.ics)


def shard_units(units: list[Unit], shard: int, shards: int) -> list[Unit]:
    """The units of shard ``shard`` (1-based) of ``shards``: those with index % shards == shard - 1.

    Round-robin over the plan (learning rate outermost) spreads cheap and costly learning rates over
    every shard; the shards are disjoint and together cover every unit.
    """
    return [unit for unit in units if unit.index % shards == shard - 1]


def initial_conditions(model: Network, config: SweepConfig, ic_start: int, ic_stop: int) -> np.ndarray:
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


def unit_fractions(epochs: np.ndarray, done: np.ndarray, config: SweepConfig) -> np.ndarray:
    """Share (0..1) of each unit's work done, from ``unit_epochs`` and ``unit_done``.

    An epoch of 0..T trains the M+1 networks of every ball, one past T only the reference, and the
    tau phase counts against its whole budget (it often ends early): units in flight stay below 1.
    """
    ball_epochs, ball = config.epochs + 1, config.replicas + 1
    tau_epochs = max(config.tau_epochs - config.epochs, 0)
    work = np.minimum(epochs, ball_epochs) * ball + np.clip(epochs - ball_epochs, 0, tau_epochs)
    return np.where(done, 1.0, np.minimum(work / (ball_epochs * ball + tau_epochs), 0.99))
