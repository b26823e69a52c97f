"""Read a results file, finished or still being written, into plain values that screens display.

Runs in worker threads, through the public reader :func:`gdchaos.store.open` (a SWMR reader without
HDF5 file locking, so it never blocks a writer). Every read opens the file, reads what it needs and
closes it again: a long-lived SWMR handle breaks when its writer closes the file, and a stopped run
may be resumed by a new writer at any time. Statistics follow the one refit policy of
:meth:`gdchaos.store.Results.analysis`: stored where the run wrote them, fitted here (once, kept for
the next reads) for learning rates that are complete but not analysed yet (the run analyses at its end).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gdchaos import store
from gdchaos.analysis import SweepAnalysis, first_divergence
from gdchaos.config import SweepConfig
from gdchaos.engine.units import unit_fractions
from gdchaos.errors import GdchaosError


VALUES = ("lambda_mean", "lambda_std", "rho", "tau_mean", "tau_std")  # per-eta statistics shown
SUMMARY = (*VALUES, "n_reached", "n_ic", "n_diverged")


class ReadError(Exception):
    """The file cannot be read as a gdchaos results file; the message is one line for people."""


@dataclass(frozen=True)
class EtaRow:
    """One learning rate: where its work stands and its statistics (NaN: not known yet)."""

    eta: float
    status: str  # "pending", "running" or "done"
    progress: float  # share of its (IC, epoch) work written, 0..1
    lambda_mean: float = math.nan
    lambda_std: float = math.nan
    rho: float = math.nan
    tau_mean: float = math.nan
    tau_std: float = math.nan
    n_reached: int | None = None
    n_ic: int | None = None
    n_diverged: int | None = None
    lambda_tangent: float = math.nan  # mean tangent exponent over [0, T] (runs with tangent curves)

    @property
    def all_diverged(self) -> bool:
        """Analysed, and every initial condition diverged: there is no lambda to show."""
        return bool(self.n_ic) and self.n_diverged == self.n_ic


@dataclass(frozen=True)
class RunState:
    """Everything the live and results screens show about a run at one moment."""

    name: str
    config: SweepConfig
    rows: tuple[EtaRow, ...]
    units_done: int
    units_total: int
    fraction: float  # share of all work written, 0..1
    finished: float  # share of all work in finished units, 0..1
    focus: int  # learning rate whose curves are shown
    focus_ic: int | None  # initial condition shown (the one in flight, else the last done)
    log_d: tuple[float, ...]  # ln of the replicas' mean distance D(t) of that IC, epochs so far
    loss: tuple[float, ...]  # training loss of that IC's reference, epochs so far
    log_d1: tuple[float, ...] = ()  # ln d_1(t) of that IC's first replica (runs with tangent curves)
    log_tangent: tuple[float, ...] = ()  # its tangent curve ln ||Phi_t xi_1||_1, epochs so far

    @property
    def complete(self) -> bool:
        return self.units_done == self.units_total


@dataclass(frozen=True)
class IcFit:
    """One initial condition of one learning rate: ln D(t) and its fitted exponential window."""

    ic: int
    log_d: tuple[float, ...]
    start: int  # fit window, inclusive epochs; -1: no fit
    end: int
    lyapunov: float
    r2: float
    diverged_at: int  # first epoch a network of the ball diverged or a distance is non-finite; -1: never


class RunReader:
    """Reads one results file; keeps the fits of learning rates it analysed itself."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fits: dict = {}  # eta index -> fit, for the run identified by self._identity
        self._identity: tuple[str, str] | None = None

    def read(self, focus: int = 0) -> RunState:
        """Progress, per-eta statistics and the curves of learning rate ``focus``."""
        with self._reading() as run:
            return self._state(run, focus)

    def config(self) -> SweepConfig:
        """The run's config (a light read: no statistics)."""
        with self._reading() as run:
            return run.config

    def eta_fits(self, e: int) -> list[IcFit]:
        """ln D(t) and fit of every initial condition of learning rate ``e`` (no fit window while the
        learning rate is not complete); a ball's curve ends where it diverged (``diverged_epoch``)."""
        with self._reading() as run:
            fits = self._analysis(run).fits
            distances = run.file["distances"][e]
            records = (first_divergence(run.file["diverged_epoch"][e]) if "diverged_epoch" in run.file
                       else np.full(len(distances), -1))
        out = []
        for ic, ball in enumerate(distances):
            start, end = fits["start"][e, ic], fits["end"][e, ic]
            window = (int(start), int(end)) if np.isfinite(start) and np.isfinite(end) else (-1, -1)
            bad = ~np.isfinite(ball).all(axis=0) & np.isfinite(ball).any(axis=0)  # all NaN: not written yet
            bad |= np.isinf(ball).any(axis=0)
            at = [int(np.argmax(bad))] if bad.any() else []
            at += [int(records[ic])] if records[ic] >= 0 else []
            diverged_at = min(at, default=-1)
            log_d = log_mean(ball)
            out.append(IcFit(ic, log_d if diverged_at < 0 else log_d[:diverged_at], *window,
                             float(fits["lyapunov"][e, ic]), float(fits["r2"][e, ic]), diverged_at))
        return out

    # ------------------------------------------------------------------ internals
    @contextmanager
    def _reading(self) -> Iterator[store.Results]:
        """The open file; whatever goes wrong reading it becomes a one-line ReadError."""
        if not self.path.exists():
            raise ReadError(f"{self.path}: no such file")
        try:
            run = store.open(self.path)
        except GdchaosError as exc:
            raise ReadError(str(exc)) from None
        except Exception:  # h5py raises many kinds on damaged files
            raise ReadError(f"{self.path}: not a readable HDF5 file") from None
        try:
            with run:
                yield run
        except ReadError:
            raise
        except GdchaosError as exc:
            raise ReadError(str(exc)) from None
        except Exception as exc:  # h5py raises many kinds on damaged or half-written files
            raise ReadError(f"{self.path.name}: damaged or incomplete results file ({exc})") from None

    def _analysis(self, run: store.Results) -> SweepAnalysis:
        """The run's analysis; fits this reader made are kept until another run replaces the file."""
        identity = (run.attrs.get("identity", ""), run.attrs.get("created", ""))
        if identity != self._identity:
            self._identity, self._fits = identity, {}
        return run.analysis(cache=self._fits)

    def _state(self, run: store.Results, focus: int) -> RunState:
        config = run.config
        eta = run.eta
        units = run.units
        done, epochs = run.unit_status()
        n_eta, q = len(eta), config.ics
        focus = min(max(focus, 0), n_eta - 1)

        share = unit_fractions(epochs, done, config)
        work = np.zeros(n_eta)
        running = np.zeros(n_eta, dtype=bool)
        for unit in units:
            etas = slice(unit.eta_start, unit.eta_stop)
            work[etas] += share[unit.index] * (unit.ic_stop - unit.ic_start) / q
            running[etas] |= epochs[unit.index] > 0 and not done[unit.index]
        analysis = self._analysis(run)
        complete, summary = analysis.complete, analysis.summary
        rows = tuple(EtaRow(float(eta[e]), "done" if complete[e] else "running" if running[e] else "pending",
                            float(work[e]), **_statistics(summary, e)) for e in range(n_eta))
        sizes = np.array([unit.size for unit in units])
        total = max(1, int(sizes.sum()))
        fraction, finished = float((share * sizes).sum() / total), float((done * sizes).sum() / total)

        focus_ic = _focus_ic(units, done, epochs, focus)
        log_d: tuple[float, ...] = ()
        loss: tuple[float, ...] = ()
        log_d1: tuple[float, ...] = ()
        log_tangent: tuple[float, ...] = ()
        if focus_ic is not None:
            ball = run.file["distances"][focus, focus_ic]
            log_d = log_mean(ball)
            loss = finite_prefix(run.file["loss"][focus, focus_ic])
            if "tangent_log_distance" in run.file:
                log_d1 = log_mean(ball[:1])
                log_tangent = finite_prefix(run.file["tangent_log_distance"][focus, focus_ic])
        return RunState(self.path.name, config, rows, int(done.sum()), len(units), fraction, finished, focus,
                        focus_ic, log_d, loss, log_d1, log_tangent)


def _statistics(summary: dict[str, np.ndarray], e: int) -> dict:
    """The row values of learning rate ``e`` (none while it is not analysed)."""
    if math.isnan(summary["n_ic"][e]):
        return {}
    values = {name: float(summary[name][e]) if name in VALUES else _count(summary[name][e]) for name in SUMMARY}
    if "lambda_tangent_mean" in summary:
        values["lambda_tangent"] = float(summary["lambda_tangent_mean"][e])
    return values


def _focus_ic(units: list, done: np.ndarray, epochs: np.ndarray, e: int) -> int | None:
    """First IC of the unit in flight at learning rate ``e``, else of the last unit done there."""
    covering = [u for u in units if u.eta_start <= e < u.eta_stop]
    in_flight = [u for u in covering if epochs[u.index] > 0 and not done[u.index]]
    if in_flight:
        return in_flight[0].ic_start
    finished = [u for u in covering if done[u.index]]
    return finished[-1].ic_start if finished else None


def _count(value: float) -> int | None:
    return None if math.isnan(value) else int(value)


def finite_prefix(values: np.ndarray) -> tuple[float, ...]:
    """The values up to the first non-finite one (later epochs are not written yet)."""
    bad = ~np.isfinite(values)
    stop = int(np.argmax(bad)) if bad.any() else values.size
    return tuple(float(v) for v in values[:stop])


def log_mean(ball: np.ndarray) -> tuple[float, ...]:
    """ln of the mean over replicas of d_j(t), shape (M, T+1), up to the first unwritten or zero epoch."""
    mean = ball.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return finite_prefix(np.log(mean))
