"""Find the learning rate: locate the onset of chaos with a short probe and name the suggestions (docs/find-lr.md).

1. Bracket: eos_init = 2 / median lambda_max(theta_0) over the probe's initial conditions (the edge of
   stability at initialisation) and eta_div, the smallest eta = eos_init 2^k (|k| <= MAX_DOUBLINGS)
   at which every initial condition diverges within ``epochs`` (:func:`divergence_by_doubling`).
2. Scan: ``points`` learning rates log-spaced over [eos_init / BELOW_EOS, eta_div], the same initial
   conditions at every eta (paired), one batched run of the runner (a results file). Per eta: rho with
   its Wilson interval, lambda mean +- std over the finite ones, the share of diverged balls.
3. Refine: bisection in log eta between the last scanned eta with rho < target and the first with
   rho >= target; round k uses ``ics`` (k + 1) initial conditions (the first ``ics`` are the scan's).
4. Suggestions: ``onset`` (first eta with rho >= target), ``first_chaos`` (first eta with rho > 0),
   ``eos_init`` and ``divergence`` (eta_div); None, with the reason in ``notes``, when not found.
"""
from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gdchaos import runner, store
from gdchaos.analysis import analyse_sweep
from gdchaos.analysis.summary import json_safe
from gdchaos.checks import check_choice, check_int, check_number
from gdchaos.config import SweepConfig
from gdchaos.engine.train import train_to_target
from gdchaos.engine.sweep import run_unit
from gdchaos.engine.units import initial_conditions, plan_units
from gdchaos.errors import GdchaosError
from gdchaos.grid import parse_etas
from gdchaos.nn import top_eigenvalue
from gdchaos.store.notes import read_note, write_note

METHODS = ("tangent", "ball")
NOTE = "find_lr"  # the note of the probe's results file that holds the result
BELOW_EOS = 4.0  # the scan starts this factor below eos_init (sharpness grows during training)
MAX_DOUBLINGS = 8  # eos_init x 256: no eta_div above that is looked for, the scan stops there
WILSON_Z = 1.959963984540054  # the 97.5% normal quantile: 95% intervals
VALIDATE_FACTORS = (0.7, 1.0, 1.4)
CENTRED_SPAN = 4.0  # `run --etas auto:N` spans [onset / 4, onset x 4]
ROW_ARRAYS = ("distances", "reached_epoch", "diverged_epoch", "tangent_log_distance")  # what a row is made of
NEVER_REACHED = 1.01  # a target accuracy no network reaches: train_to_target runs all its epochs


@dataclass(frozen=True)
class Row:
    """One probed learning rate: ``chaotic`` of ``ics`` initial conditions (rho = 100 chaotic / ics, with
    its Wilson interval), lambda mean and population std over the finite exponents, ``diverged`` the
    share (0..1) of balls with a non-finite network; ``round`` 0 for the scan, k for refinement round k."""

    eta: float
    ics: int
    chaotic: int
    rho: float
    rho_low: float
    rho_high: float
    lambda_mean: float | None
    lambda_std: float | None
    diverged: float
    round: int


@dataclass(frozen=True)
class Suggestions:
    """The named learning rates (None: not found; ``FindLRResult.notes`` says why)."""

    onset: float | None
    first_chaos: float | None
    eos_init: float | None
    divergence: float | None


@dataclass
class FindLRResult:
    """What :func:`find_lr` found: ``rows`` (scan, then refinement rounds), ``suggestions``, the bracket,
    plain-text ``notes`` (warnings, why a suggestion is missing) and ``validation`` rows when asked."""

    method: str
    target_rho: float
    ics: int
    epochs: int
    rows: list[Row]
    suggestions: Suggestions
    bracket: tuple[float, float]
    sharpness_init: list[float]
    notes: list[str] = field(default_factory=list)
    monotone: bool = True
    validation: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # the whole call, validation included
    probe_seconds: float = 0.0  # bracket, scan and refinement: the probe without its validation
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (NaN as None)."""
        values = asdict(self)
        values["bracket"] = list(self.bracket)
        return json_safe(values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "FindLRResult":
        """The inverse of :meth:`to_dict` (a stored result)."""
        values = dict(values)
        values["rows"] = [Row(**row) for row in values["rows"]]
        values["suggestions"] = Suggestions(**values["suggestions"])
        values["bracket"] = tuple(values["bracket"])
        return cls(**values)

    def plot(self):
        """rho (with its Wilson intervals) and lambda against eta, suggestions marked (matplotlib figure)."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise GdchaosError("plot: needs matplotlib (pip install 'gdchaos[plot]')") from None
        rows = sorted(self.rows, key=lambda row: row.eta)
        eta = np.array([row.eta for row in rows])
        figure = Figure(figsize=(6.4, 5.0))
        top, bottom = figure.subplots(2, 1, sharex=True)
        rho = np.array([row.rho for row in rows])
        top.errorbar(eta, rho, yerr=[rho - [row.rho_low for row in rows], [row.rho_high for row in rows] - rho],
                     fmt="o-", ms=3, capsize=2)
        top.axhline(100 * self.target_rho, color="grey", lw=0.8, ls=":")
        top.set_ylabel("rho %")
        lam = np.array([np.nan if row.lambda_mean is None else row.lambda_mean for row in rows])
        std = np.array([np.nan if row.lambda_std is None else row.lambda_std for row in rows])
        bottom.errorbar(eta, lam, yerr=std, fmt="o-", ms=3, capsize=2)
        bottom.axhline(0, color="grey", lw=0.8)
        bottom.set_ylabel(f"lambda ({self.method})")
        bottom.set_xlabel("eta")
        bottom.set_xscale("log")
        for (name, value), color in zip(asdict(self.suggestions).items(), ("C3", "C2", "C1", "k")):
            if value is not None:
                for axis in (top, bottom):
                    axis.axvline(value, color=color, lw=1, ls="--", label=name if axis is top else None)
        top.legend(fontsize=8)
        return figure


def wilson_interval(successes: int, trials: int, z: float = WILSON_Z) -> tuple[float, float]:
    """Wilson score interval of a proportion, in percent:

    (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n),  p = successes / trials.
    """
    check_int("trials", trials, 1)
    check_int("successes", successes, 0, trials)
    p, n = successes / trials, trials
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return 100 * max(0.0, (centre - half) / scale), 100 * min(1.0, (centre + half) / scale)


def first_at_least(rows: list[Row], target_rho: float) -> int | None:
    """Index of the first row (by eta) with rho >= 100 target_rho, or None."""
    for index, row in enumerate(rows):
        if row.rho >= 100 * target_rho:
            return index
    return None


def bisect_onset(measure: Callable[[float, int], tuple[Row, bool]], low: float, high: float,
                 rounds: int) -> tuple[float, list[Row]]:
    """Bisection in log eta of a crossing known to lie in (low, high]: rho(low) < target <= rho(high).

    ``measure(eta, round)`` probes sqrt(low high) and returns its row and whether rho >= target there.
    Returns the smallest eta known to be at or above the target and the rows of every round.
    """
    rows = []
    for k in range(1, rounds + 1):
        middle = math.sqrt(low * high)
        row, above = measure(middle, k)
        rows.append(row)
        if above:
            high = middle
        else:
            low = middle
    return high, rows


def not_monotone(rows: list[Row], target_rho: float) -> list[float]:
    """Learning rates past the first crossing where rho falls below the target again although at most
    half of the balls diverged (periodic windows, as in the cubic map); rows sorted by eta."""
    start = first_at_least(rows, target_rho)
    if start is None:
        return []
    return [row.eta for row in rows[start + 1:] if row.rho < 100 * target_rho and row.diverged <= 0.5]


def check_options(method: str, ics: int, epochs: int, target_rho: float, refine: int, points: int) -> None:
    """Raise GdchaosError naming the first bad option of :func:`find_lr`."""
    check_choice("method", method, METHODS)
    check_int("ics", ics, 1, 100_000)
    check_int("epochs", epochs, 2, 1_000_000)
    check_number("target_rho", target_rho, 0, 1, open_low=True)
    check_int("refine", refine, 0, 30)
    check_int("points", points, 3, 1000)


def probe_config(config: SweepConfig, method: str, ics: int, epochs: int) -> SweepConfig:
    """The sweep config of a probe: no tau phase, no sharpness or trajectories; the tangent method
    needs one replica (its perturbation xi_1 starts the tangent vector)."""
    return replace(config, ics=ics, epochs=epochs, tau_epochs=epochs, sharpness_every=0, save_trajectories=False,
                   trajectory_ics=(), tangent=method == "tangent", tangent_k=0,
                   replicas=1 if method == "tangent" else config.replicas,
                   etas=config.etas or (1.0,))


def find_lr(config: SweepConfig, *, method: str = "tangent", ics: int = 8, epochs: int = 100,
            target_rho: float = 0.5, refine: int = 2, points: int = 12, validate: bool = False,
            output: str | Path | None = None, overwrite: bool = False,
            announce: Callable[[str], None] | None = None, reporter: runner.Reporter | None = None) -> FindLRResult:
    """Probe ``config``'s network and data for the onset of chaos (module docstring).

    ``output``: the scan's results file (the runner's layout: ``gdchaos plot`` and the TUI show it)
    with the result as its ``find_lr`` note; None keeps it in a temporary folder. ``announce``
    receives one line per phase, ``reporter`` the runner's progress of the scan and the rounds.
    ``validate`` trains the references to the config's ``target`` test accuracy at onset x (0.7, 1,
    1.4) within ``tau_epochs`` and reports tau.
    """
    check_options(method, ics, epochs, target_rho, refine, points)
    started = time.perf_counter()
    say = announce or (lambda text: None)
    base = probe_config(config, method, ics, epochs).validate()
    model, data, _ = runner.prepare(base)
    x, y, x_test, y_test = data
    balls = initial_conditions(model, base, 0, ics)
    references = np.ascontiguousarray(balls[:, 0])

    sharpness = top_eigenvalue(model, references, x, y, tol=base.sharpness_tol, max_iter=base.sharpness_max_iter,
                               subset=base.sharpness_subset or None, seed=base.seed,
                               memory_budget=base.memory_budget_bytes, whole_network=True).eigenvalue
    finite = sharpness[np.isfinite(sharpness)]
    median = float(np.median(finite)) if finite.size else math.nan
    if not median > 0:
        raise GdchaosError(f"find-lr: the sharpness at initialisation is not positive (median {median:.4g}); "
                           "no edge of stability to start from (check init_std and the data)")
    eos_init = 2.0 / median
    say(f"sharpness at init: median {median:.4g} over {finite.size} ICs -> eos_init = 2/lambda_max = {eos_init:.4g}")

    def all_diverge(eta: float) -> bool:
        theta = references.copy()
        run = train_to_target(model, theta, eta, x, y, x_test, y_test, target=NEVER_REACHED, epochs=epochs,
                              memory_budget=base.memory_budget_bytes)
        return bool(run.diverged.all())

    notes: list[str] = []
    eta_div = divergence_by_doubling(all_diverge, eos_init, say)
    high = eta_div if eta_div is not None else eos_init * 2.0 ** MAX_DOUBLINGS
    if eta_div is None:
        notes.append(f"no learning rate up to {high:.4g} (eos_init x 2^{MAX_DOUBLINGS}) diverged every IC "
                     f"within {epochs} epochs: divergence not found")
    low = eos_init / BELOW_EOS
    if not low < high:
        raise GdchaosError(f"find-lr: empty bracket [{low:.4g}, {high:.4g}]")
    scan_etas = tuple(float(eta) for eta in np.geomspace(low, high, points))
    say(f"scan: {points} learning rates in [{low:.4g}, {high:.4g}] x {ics} ICs ({method})")

    workdir = tempfile.TemporaryDirectory(prefix="gdchaos-find-lr-")
    try:
        scan_path = Path(output) if output else Path(workdir.name) / "scan.h5"
        scan_config = replace(base, etas=scan_etas, output=str(scan_path))
        runner.run(scan_config, overwrite=overwrite, reporter=reporter)
        rows = probe_rows(scan_path, method, 0)
        crossing = first_at_least(rows, target_rho)
        refined: list[Row] = []
        onset = None
        if crossing is None:
            notes.append(f"no onset found: rho < {100 * target_rho:g}% at every scanned learning rate "
                         f"in [{low:.4g}, {high:.4g}]")
        elif crossing == 0:
            notes.append(f"rho >= {100 * target_rho:g}% already at the lowest scanned learning rate {low:.4g}: "
                         "the onset lies below the bracket; no onset suggested")
        else:
            def measure(eta: float, k: int) -> tuple[Row, bool]:
                run_ics = ics * (k + 1)
                say(f"refine {k}/{refine}: eta = {eta:.4g} x {run_ics} ICs")
                row = memory_rows(model, data, replace(base, etas=(eta,), ics=run_ics), method, k)[0]
                return row, row.rho >= 100 * target_rho
            onset, refined = bisect_onset(measure, rows[crossing - 1].eta, rows[crossing].eta, refine)
        all_rows = sorted(rows + refined, key=lambda row: row.eta)
        chaotic = [row.eta for row in all_rows if row.chaotic > 0]
        windows = not_monotone(rows, target_rho)
        if windows:
            notes.append("rho is not monotone in eta: it falls below the target again at eta = "
                         + ", ".join(f"{eta:.4g}" for eta in windows) + " (periodic windows?)")
        suggestions = Suggestions(onset=onset, first_chaos=chaotic[0] if chaotic else None, eos_init=eos_init,
                                  divergence=eta_div)
        result = FindLRResult(method=method, target_rho=target_rho, ics=ics, epochs=epochs, rows=rows + refined,
                              suggestions=suggestions, bracket=(low, high),
                              sharpness_init=[float(value) for value in sharpness],
                              notes=notes, monotone=not windows, path=str(scan_path) if output else None)
        result.probe_seconds = time.perf_counter() - started
        say(f"probe done in {result.probe_seconds:.0f} s")
        if validate:
            result.validation = _validate(model, data, references, onset, config, say, notes)
        result.seconds = time.perf_counter() - started
        if output:
            write_note(scan_path, NOTE, result.to_dict())
        return result
    finally:
        workdir.cleanup()


def divergence_by_doubling(all_diverge: Callable[[float], bool], eos_init: float,
                           say: Callable[[str], None] = lambda text: None) -> float | None:
    """eta_div: the smallest rung eos_init 2^k (k in [-MAX_DOUBLINGS, MAX_DOUBLINGS]) at which every IC
    diverges, or None when even the top rung does not.

    The ladder is walked down from its top: a rung that diverges stops at its first non-finite loss
    (cheap), so only the one rung that does not diverge trains for all its epochs.
    """
    eta = eos_init * 2.0 ** MAX_DOUBLINGS
    if not all_diverge(eta):
        return None
    for _ in range(2 * MAX_DOUBLINGS):
        if not all_diverge(eta / 2):
            say(f"divergence: every IC diverges from eta = {eta:.4g} (eos_init x {eta / eos_init:g}) on")
            return eta
        eta /= 2
    raise GdchaosError(f"find-lr: every learning rate down to {eta:.4g} (eos_init / 2^{MAX_DOUBLINGS}) "
                       "diverges: nothing to probe (check init_std, l2 and the data)")


def probe_rows(path: Path, method: str, round_: int) -> list[Row]:
    """The rows of a probe's results file: chaotic ICs, lambda over the finite ones, diverged balls."""
    with store.open(path) as results:
        return rows_of(results.eta, results.analysis(), results["diverged_epoch"], results.config.fit_params(),
                       method, round_)


def sweep_arrays(model, data, config: SweepConfig) -> dict[str, np.ndarray]:
    """The arrays :data:`ROW_ARRAYS` (n_eta, q, ...) of ``config``'s sweep, trained in memory unit by unit
    (:func:`gdchaos.engine.units.plan_units`), with no results file: what a refinement round needs."""
    n_eta, q = len(config.etas), config.ics
    out: dict[str, np.ndarray] = {}
    for unit in plan_units(config, model, data[0].shape[0]):
        balls = initial_conditions(model, config, unit.ic_start, unit.ic_stop)
        for event in run_unit(model, config, unit, data, balls):
            pass
        for name in ROW_ARRAYS:
            if name in event.arrays:
                values = event.arrays[name]
                if name not in out:
                    out[name] = np.empty((n_eta, q, *values.shape[2:]), dtype=values.dtype)
                out[name][unit.eta_start:unit.eta_stop, unit.ic_start:unit.ic_stop] = values
    return out


def memory_rows(model, data, config: SweepConfig, method: str, round_: int) -> list[Row]:
    """The rows of ``config``'s sweep trained in memory (:func:`sweep_arrays`), analysed by the refit
    policy of a results file (:func:`gdchaos.analysis.analyse_sweep`): the same numbers as
    :func:`probe_rows` of the same sweep written to a file."""
    arrays = sweep_arrays(model, data, config)
    eta = np.asarray(config.etas, dtype=np.float64)
    params = config.fit_params()

    def load(indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return arrays["distances"][indices], arrays["reached_epoch"][indices]

    analysis = analyse_sweep(eta, np.ones(eta.size, dtype=bool), config.ics, load, params, budget=config.tau_epochs,
                             diverged_epoch=arrays["diverged_epoch"], tangent=arrays.get("tangent_log_distance"))
    return rows_of(eta, analysis, arrays["diverged_epoch"], params, method, round_)


def rows_of(eta: np.ndarray, analysis, diverged_epoch: np.ndarray, params, method: str, round_: int) -> list[Row]:
    """One row per learning rate of a sweep's analysis (``diverged_epoch`` (n_eta, q, M+1))."""
    diverged = (np.asarray(diverged_epoch[()]) >= 0).any(axis=-1)  # (n_eta, q): any network of the ball
    rows = []
    for e, value in enumerate(eta):
        if method == "tangent":
            lam = analysis.fits["lambda_tangent"][e]
            chaotic = np.isfinite(lam) & (lam > params.lambda_min)
        else:
            lam = analysis.fits["lyapunov"][e]
            lam = np.where(diverged[e], np.nan, lam)
            chaotic = np.isfinite(lam) & (analysis.fits["r2"][e] > params.r2_min) & (lam > params.lambda_min)
        q = lam.size
        finite = lam[np.isfinite(lam)]
        count = int(chaotic.sum())
        low, high = wilson_interval(count, q)
        rows.append(Row(eta=float(value), ics=q, chaotic=count, rho=100.0 * count / q, rho_low=low, rho_high=high,
                        lambda_mean=float(finite.mean()) if finite.size else None,
                        lambda_std=float(finite.std()) if finite.size else None,
                        diverged=float(diverged[e].mean()), round=round_))
    return rows


def _validate(model, data, references: np.ndarray, onset: float | None, config: SweepConfig, say,
              notes: list[str]) -> list[dict[str, Any]]:
    """tau of the probe's references at onset x VALIDATE_FACTORS (target test accuracy ``config.target``,
    at most ``config.tau_epochs`` epochs): mean over the ICs that reached it, and how many did."""
    if onset is None:
        notes.append("validate: no onset to validate")
        return []
    x, y, x_test, y_test = data
    out = []
    for factor in VALIDATE_FACTORS:
        eta = onset * factor
        theta = references.copy()
        run = train_to_target(model, theta, eta, x, y, x_test, y_test, target=config.target,
                              epochs=config.tau_epochs, memory_budget=config.memory_budget_bytes)
        taus = run.steps[run.reached]
        out.append({"factor": factor, "eta": eta, "tau_mean": float(taus.mean()) if taus.size else None,
                    "reached": int(run.reached.sum()), "ics": int(references.shape[0]),
                    "target": config.target, "budget": config.tau_epochs})
        say(f"validate: eta = {eta:.4g} (onset x {factor}): <tau> = "
            f"{taus.mean() if taus.size else float('nan'):.4g} ({run.reached.sum()}/{references.shape[0]} reached)")
    return out


def stored_result(path: str | Path) -> FindLRResult:
    """The find-lr result stored in ``path`` (``gdchaos find-lr -o``)."""
    values = read_note(path, NOTE)
    if values is None:
        raise GdchaosError(f"{path}: holds no find-lr result (make one with `gdchaos find-lr -o {Path(path).name}`)")
    return FindLRResult.from_dict(values)


def centred_grid(result: FindLRResult, count: int) -> str:
    """``"log:START:STOP:N"`` (:mod:`gdchaos.grid`) of ``count`` learning rates log-spaced over
    [onset / CENTRED_SPAN, onset x CENTRED_SPAN]; START and STOP written exactly (repr)."""
    onset = result.suggestions.onset
    if onset is None:
        reason = "; ".join(result.notes) or "no onset found"
        raise GdchaosError(f"etas: auto needs a find-lr onset, and this probe found none ({reason}); "
                           "give --etas explicitly")
    check_int("etas: N", count, 1)
    return f"log:{float(onset / CENTRED_SPAN)!r}:{float(onset * CENTRED_SPAN)!r}:{count}"


def centred_etas(result: FindLRResult, count: int) -> tuple[float, ...]:
    """The learning rates of :func:`centred_grid` (what ``gdchaos run --etas auto:N`` sweeps)."""
    return parse_etas(centred_grid(result, count))
