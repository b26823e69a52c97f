"""Full-batch gradient descent (Eq. 1) for a batch of networks, with per-epoch observables.

theta_r(t+1) = theta_r(t) - eta_r * grad L(theta_r(t)) for every network r of the batch, each with
its own learning rate eta_r. :func:`train` yields one :class:`EpochRecord` per epoch t = 0..T, the
observables of theta(t) *before* the update of epoch t, so record 0 describes the initial
condition and record T the network after T updates.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from gdchaos import backend
from gdchaos.nn import DEFAULT_MEMORY_BUDGET, Network

CALL_SECONDS = 0.25  # aimed duration of one fused training call (progress and Ctrl-C stay responsive)


@dataclass
class EpochRecord:
    """Observables of all networks at epoch t (parameters theta(t))."""

    epoch: int
    loss: np.ndarray  # (R,) training loss
    train_accuracy: np.ndarray  # (R,)
    test_accuracy: np.ndarray | None  # (len(test_networks),) when test data were given
    distances: np.ndarray | None  # (len(pairs),) L1 distances, when pairs were given
    tensor_distances: np.ndarray | None  # (len(pairs), n_tensors) the same per parameter tensor
    theta: np.ndarray | None  # (R, P) copy of the parameters, when asked
    references: np.ndarray | None = None  # (n_balls, P) parameters of the references (train_balls, when asked)


def gradient_step(model: Network, theta: np.ndarray, eta: np.ndarray | float, x: np.ndarray,
                  y: np.ndarray, *, memory_budget: int = DEFAULT_MEMORY_BUDGET):
    """One full-batch GD step in place (Eq. 1); returns the evaluation at the old parameters."""
    evaluation = model.evaluate(theta, x, y, memory_budget=memory_budget)
    backend.gradient_step_(theta, evaluation.grad, _eta_vector(eta, theta.shape[0]))
    return evaluation


def train(model: Network, theta: np.ndarray, eta: np.ndarray | float, x: np.ndarray, y: np.ndarray,
          epochs: int, *, x_test: np.ndarray | None = None, y_test: np.ndarray | None = None,
          test_networks: np.ndarray | None = None, pairs: np.ndarray | None = None,
          keep_params: bool = False, memory_budget: int = DEFAULT_MEMORY_BUDGET,
          ) -> Iterator[EpochRecord]:
    """Train ``theta`` (R, P) in place for ``epochs`` GD steps, yielding records for t = 0..epochs.

    ``eta`` is a scalar or one learning rate per network. ``pairs`` (n, 2) of network indices
    selects the L1 distances d = sum_k |theta_a - theta_b| to record; ``test_networks`` the
    networks whose test accuracy is recorded (all by default, when test data are given).
    Non-finite values (divergence at large eta) propagate as NaN/inf and never raise.
    """
    eta = _eta_vector(eta, theta.shape[0])
    if pairs is not None:
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if x_test is not None and test_networks is None:
        test_networks = np.arange(theta.shape[0])
    bounds = model.tensor_bounds()
    with np.errstate(all="ignore"):
        for epoch in range(epochs + 1):
            last = epoch == epochs
            evaluation = model.evaluate(theta, x, y, grad=not last, memory_budget=memory_budget)
            test = None
            if x_test is not None:
                test = model.accuracy(theta[test_networks], x_test, y_test,
                                      memory_budget=memory_budget)
            per_tensor = None if pairs is None else backend.l1_distances(theta, pairs, bounds)
            yield EpochRecord(
                epoch=epoch,
                loss=evaluation.loss,
                train_accuracy=evaluation.accuracy,
                test_accuracy=test,
                distances=None if pairs is None else per_tensor.sum(axis=1),
                tensor_distances=per_tensor,
                theta=theta.copy() if keep_params else None,
            )
            if not last:
                backend.gradient_step_(theta, evaluation.grad, eta)


def train_balls(model: Network, theta: np.ndarray, eta: np.ndarray | float, x: np.ndarray, y: np.ndarray, epochs: int,
                ball: int, *, x_test: np.ndarray, y_test: np.ndarray, stops: tuple[int, ...] = (),
                keep_references: bool = False, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Iterator[EpochRecord]:
    """:func:`train` for eps-balls: networks [b ball, (b+1) ball) of ``theta`` are a reference and
    its replicas. Yields the records of ``train(..., test_networks=references, pairs=(reference,
    replica) pairs)``, bit for bit.

    Small MLPs (``model.fused_training``) train whole balls for many epochs per kernel call (calls
    of about CALL_SECONDS); the records of a call come together, and ``theta`` holds theta(t)
    when the record of epoch t is yielded only for t in ``stops`` and t = ``epochs``.
    ``keep_references``: every record carries the references' parameters theta_ref(t) (``references``).
    """
    refs = np.arange(0, theta.shape[0], ball)
    if not model.fused_training(x.shape[0], x_test.shape[0]):
        pairs = np.stack([np.repeat(refs, ball - 1), (refs[:, None] + np.arange(1, ball)).ravel()], axis=1)
        for record in train(model, theta, eta, x, y, epochs, x_test=x_test, y_test=y_test, test_networks=refs,
                            pairs=pairs, memory_budget=memory_budget):
            record.references = theta[refs] if keep_references else None  # theta holds theta(t) here
            yield record
        return
    eta = _eta_vector(eta, theta.shape[0])
    bounds = model.tensor_bounds()
    grad = np.empty_like(theta)
    ends = sorted({t for t in stops if 0 <= t < epochs} | {epochs})
    epoch, size, pending = 0, 1, False
    while epoch <= epochs:
        end = min(epoch + size - 1, next(t for t in ends if t >= epoch))
        started = time.perf_counter()
        out = model.train_balls(theta, eta, grad, x, y, x_test, y_test, ball, bounds, end - epoch + 1,
                                pending, end < epochs, keep_references)
        elapsed = time.perf_counter() - started
        n = x.shape[0]
        loss = model.mean_loss(out.loss, out.penalty, n)
        for k in range(end - epoch + 1):
            yield EpochRecord(epoch=epoch + k, loss=loss[k], train_accuracy=out.correct[k] / n,
                              test_accuracy=out.test_correct[k] / max(1, x_test.shape[0]),
                              distances=out.distances[k].sum(axis=1), tensor_distances=out.distances[k], theta=None,
                              references=None if out.references is None else out.references[k])
        size = min(next_call_epochs(size, elapsed), epochs + 1)  # calls cut short by stops must not grow it forever
        epoch, pending = end + 1, end < epochs


def next_call_epochs(epochs: int, elapsed: float) -> int:
    """Epochs for the next fused training call after one of ``epochs`` took ``elapsed`` seconds:
    aimed at CALL_SECONDS, growing at most 4x per call (the first calls also load the kernel)."""
    return max(1, min(4 * epochs, int(epochs * CALL_SECONDS / max(elapsed, 1e-6))))


class TargetRun(NamedTuple):
    """How each network's training towards the target accuracy went (:func:`train_to_target`)."""

    steps: np.ndarray  # (R,) GD steps taken
    reached: np.ndarray  # (R,) bool: test accuracy >= target after the last step
    diverged: np.ndarray  # (R,) bool: the loss before the last step was not finite


def train_to_target(model: Network, theta: np.ndarray, eta: np.ndarray | float, x: np.ndarray, y: np.ndarray,
                    x_test: np.ndarray, y_test: np.ndarray, *, target: float, epochs: int,
                    memory_budget: int = DEFAULT_MEMORY_BUDGET) -> TargetRun:
    """GD steps (Eq. 1) of each network of ``theta`` (R, P), in place, until its accuracy on
    (x_test, y_test) is >= ``target`` after a step, the loss before a step is not finite (that step
    is still taken), or ``epochs`` steps.

    Networks are independent: calling this twice with ``epochs`` k and then m (on the networks
    still running) gives the same bits as one call with k + m. Small MLPs run all steps in one
    kernel call (``model.fused_training``); other models step all running networks together.
    """
    eta = _eta_vector(eta, theta.shape[0])
    if model.fused_training(x.shape[0], x_test.shape[0]):
        steps, status = model.train_to_target(theta, eta, x, y, x_test, y_test, target, epochs)
        return TargetRun(steps, status == backend.SMALL_REACHED, status == backend.SMALL_DIVERGED)
    steps = np.zeros(theta.shape[0], dtype=np.int64)
    reached = np.zeros(theta.shape[0], dtype=bool)
    diverged = np.zeros(theta.shape[0], dtype=bool)
    active = np.arange(theta.shape[0])
    with np.errstate(all="ignore"):
        for _ in range(epochs):
            if not active.size:
                break
            sub = theta[active]
            evaluation = gradient_step(model, sub, eta[active], x, y, memory_budget=memory_budget)
            theta[active] = sub
            steps[active] += 1
            blown = ~np.isfinite(evaluation.loss)
            diverged[active[blown]] = True
            hit = (model.accuracy(sub, x_test, y_test, memory_budget=memory_budget) >= target) & ~blown
            reached[active[hit]] = True
            active = active[~hit & ~blown]
    return TargetRun(steps, reached, diverged)


def _eta_vector(eta: np.ndarray | float, n_networks: int) -> np.ndarray:
    """Broadcast a scalar or per-network learning rate to a float64 vector of length R."""
    vector = np.broadcast_to(np.asarray(eta, dtype=np.float64), (n_networks,))
    return np.ascontiguousarray(vector)
