"""Read a results file, finished or still being written, into plain values that screens display.

Runs in worker threads. Every read opens the file, reads what it needs and closes it again: a
long-lived SWMR handle breaks when its writer closes the file, and a stopped run may be resumed by
a new writer at any time. The file is opened with HDF5 file locking off: a reader that holds the
lock, even for a moment, makes a resuming writer fail to open the file (a SWMR reader needs no lock).
Learning rates whose units are all done but that the run has not analysed yet (it analyses at its
end) are fitted here with the run's own analysis parameters.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from gdchaos.analysis import EtaSummary, fit_local_exponent
from gdchaos.config import SweepConfig, from_dict
from gdchaos.errors import GdchaosError
from gdchaos.report import analyse_arrays
from gdchaos.results import FORMAT, FORMAT_VERSION, Unit, read_group, unit_fractions


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
    diverged_at: int  # first non-finite epoch; -1: never


class RunReader:
    """Reads one results file; keeps the fits of learning rates it analysed itself."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._live: dict[int, EtaSummary] = {}
        self._identity: tuple[str, str] | None = None

    def read(self, focus: int = 0) -> RunState:
        """Progress, per-eta statistics and the curves of learning rate ``focus``."""
        with self._reading() as handle:
            return self._state(handle, focus)

    def config(self) -> SweepConfig:
        """The run's config (a light read: no statistics)."""
        with self._reading() as handle:
            return _config(handle)

    def eta_fits(self, e: int) -> list[IcFit]:
        """ln D(t) and fit of every initial condition of learning rate ``e``."""
        with self._reading() as handle:
            params = _config(handle).fit_params()
            distances = handle["distances"][e]
            fields = ("start", "end", "lyapunov", "r2")
            n_ic = read_group(handle, "summary", ("n_ic",), handle["eta"].shape)["n_ic"][e]
            analysed = not math.isnan(n_ic) and all(f"fit/{name}" in handle for name in fields)
            stored = {name: handle[f"fit/{name}"][e] for name in fields} if analysed else {}
        out = []
        for ic, ball in enumerate(distances):
            if analysed:
                start, end = stored["start"][ic], stored["end"][ic]
                window = (int(start), int(end)) if np.isfinite(start) and np.isfinite(end) else (-1, -1)
                lyapunov, r2 = float(stored["lyapunov"][ic]), float(stored["r2"][ic])
            else:
                fit = fit_local_exponent(ball, params)
                window, lyapunov, r2 = (fit.start, fit.end), fit.lyapunov, fit.r2
            bad = ~np.isfinite(ball).all(axis=0)
            out.append(IcFit(ic, log_mean(ball), *window, lyapunov, r2, int(np.argmax(bad)) if bad.any() else -1))
        return out

    # ------------------------------------------------------------------ internals
    @contextmanager
    def _reading(self) -> Iterator[h5py.File]:
        """The open file; whatever goes wrong reading it becomes a one-line ReadError."""
        if not self.path.exists():
            raise ReadError(f"{self.path}: no such file")
        try:
            handle = h5py.File(self.path, "r", libver="latest", swmr=True, locking=False)
        except Exception:
            raise ReadError(f"{self.path}: not a readable HDF5 file") from None
        try:
            with handle:
                if handle.attrs.get("format") != FORMAT:
                    raise ReadError(f"{self.path}: not a gdchaos results file")
                if int(handle.attrs.get("format_version", 0)) > FORMAT_VERSION:
                    raise ReadError(f"{self.path}: written by a newer gdchaos; upgrade gdchaos to read it")
                yield handle
        except ReadError:
            raise
        except GdchaosError as exc:
            raise ReadError(str(exc)) from None
        except Exception as exc:  # h5py raises many kinds on damaged or half-written files
            raise ReadError(f"{self.path.name}: damaged or incomplete results file ({exc})") from None

    def _state(self, handle: h5py.File, focus: int) -> RunState:
        config = _config(handle)
        identity = (handle.attrs.get("identity", ""), handle.attrs.get("created", ""))
        if identity != self._identity:  # another run replaced the file
            self._identity, self._live = identity, {}
        eta = handle["eta"][:]
        units = [Unit(i, *map(int, row)) for i, row in enumerate(handle["units"][:])]
        done = handle["unit_done"][:].astype(bool)
        epochs = handle["unit_epochs"][:]
        n_eta, q = len(eta), config.ics
        focus = min(max(focus, 0), n_eta - 1)

        share = unit_fractions(epochs, done, config)
        work = np.zeros(n_eta)
        running = np.zeros(n_eta, dtype=bool)
        complete = np.ones(n_eta, dtype=bool)
        for unit in units:
            etas = slice(unit.eta_start, unit.eta_stop)
            work[etas] += share[unit.index] * (unit.ic_stop - unit.ic_start) / q
            running[etas] |= epochs[unit.index] > 0 and not done[unit.index]
            complete[etas] &= done[unit.index]
        stats = self._statistics(handle, config, eta, complete)
        rows = tuple(EtaRow(float(eta[e]), "done" if complete[e] else "running" if running[e] else "pending",
                            float(work[e]), **stats[e]) for e in range(n_eta))
        sizes = np.array([(u.eta_stop - u.eta_start) * (u.ic_stop - u.ic_start) for u in units])
        total = max(1, int(sizes.sum()))
        fraction, finished = float((share * sizes).sum() / total), float((done * sizes).sum() / total)

        focus_ic = _focus_ic(units, done, epochs, focus)
        log_d: tuple[float, ...] = ()
        loss: tuple[float, ...] = ()
        if focus_ic is not None:
            log_d = log_mean(handle["distances"][focus, focus_ic])
            loss = finite_prefix(handle["loss"][focus, focus_ic])
        return RunState(self.path.name, config, rows, int(done.sum()), len(units), fraction, finished, focus,
                        focus_ic, log_d, loss)

    def _statistics(self, handle: h5py.File, config: SweepConfig, eta: np.ndarray,
                    complete: np.ndarray) -> list[dict]:
        """Stored summary where the run wrote it, else this reader's own fits of complete etas."""
        summary = read_group(handle, "summary", SUMMARY, eta.shape)
        stored = ~np.isnan(summary["n_ic"])
        todo = [e for e in range(len(eta)) if complete[e] and not stored[e] and e not in self._live]
        if todo:
            summaries, _ = analyse_arrays(eta[todo], handle["distances"][todo], handle["reached_epoch"][todo],
                                          config.fit_params(), budget=config.tau_epochs)
            self._live.update(zip(todo, summaries))
        out = []
        for e in range(len(eta)):
            if stored[e]:
                out.append({name: float(summary[name][e]) if name in VALUES else _count(summary[name][e])
                            for name in SUMMARY})
            elif e in self._live:
                out.append({name: getattr(self._live[e], name) for name in SUMMARY})
            else:
                out.append({})
        return out


def _config(handle: h5py.File) -> SweepConfig:
    return from_dict(json.loads(handle.attrs["config"]))


def _focus_ic(units: list[Unit], done: np.ndarray, epochs: np.ndarray, e: int) -> int | None:
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
