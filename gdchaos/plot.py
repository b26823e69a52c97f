"""The paper's figures from gdchaos files (docs/plots.md).

Builders return a :class:`matplotlib.figure.Figure` (no pyplot, no global state), sized for a paper's
column (3.4 in) or page (7 in) width, with 8 pt fonts and the Okabe-Ito colour-blind-safe palette:

- :func:`sweep_figure`: lambda_nMLE +- std, rho and <tau> against eta, several runs overlaid (Figs. 4-5, 8-13);
- :func:`distances_figure`: d(t) of every eps-ball at one eta, fit windows, histogram of local exponents (Figs. 2-3);
- :func:`loss_figure`: training loss against epoch for a few etas (Fig. 1);
- :func:`sharpness_figure`: top Hessian eigenvalue against epoch with the 2/eta line (Fig. 14);
- :func:`cubic_figure`: bifurcation diagram and Lyapunov exponent of the cubic map (Figs. 6-7).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from gdchaos.analysis import first_divergence
from gdchaos.store import Results
from gdchaos.store.cubic import CubicFile

COLUMN_WIDTH = 3.4  # inches, one column of a two-column paper
PAGE_WIDTH = 7.0
# Okabe & Ito (2008), in an order where neighbours stay distinct; yellow left out (too light on white)
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "D", "^", "v", "P", "X")
EDGE_OF_STABILITY_COLOUR = "#D55E00"
DODGE = 1.07  # overlaid runs are shifted by this factor in eta, so error bars do not hide each other
DIVERGED_BAND = 0.02  # a learning rate where every IC diverged is shaded over this share of the eta axis
DIVERGED_COLOUR = "0.85"
LOG_AXIS_ETAS = (1e-200, 1e200)  # beyond, matplotlib's log axis overflows: log10(eta) on a linear axis
NONE_STEP = 1.45  # triangles "no IC reached the target" of overlaid runs are stacked by this factor
STYLE: dict[str, Any] = {
    "font.size": 8, "axes.labelsize": 8, "axes.titlesize": 8, "figure.titlesize": 8,
    "legend.fontsize": 7, "legend.title_fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "axes.linewidth": 0.6, "xtick.major.width": 0.6, "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4, "ytick.minor.width": 0.4, "xtick.major.size": 3, "ytick.major.size": 3,
    "xtick.minor.size": 1.8, "ytick.minor.size": 1.8, "lines.linewidth": 1.0, "lines.markersize": 3.5,
    "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE), "savefig.dpi": 150, "figure.dpi": 150,
    "pdf.fonttype": 42, "svg.fonttype": "none", "svg.hashsalt": "gdchaos",
}
_LABEL_ETA = r"learning rate $\eta$"


def _styled(build: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under :data:`STYLE` (fonts, widths and palette are read at creation)."""
    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(STYLE):
            return build(*args, **kwargs)
    return wrapper


def save(figure: Figure, path: str | Path, *, dpi: int = 150) -> None:
    """Write ``figure``; the format follows the suffix (png, pdf, svg). PDF and SVG get no creation
    date and fixed SVG ids, so the same data give the same bytes."""
    from gdchaos import __version__

    software = f"gdchaos {__version__}"
    metadata = {".png": {"Software": software}, ".pdf": {"Creator": software, "CreationDate": None},
                ".svg": {"Creator": software, "Date": None}}.get(Path(path).suffix, {})
    with matplotlib.rc_context(STYLE):
        figure.savefig(path, dpi=dpi, metadata=metadata)


# ================================================================= data
@dataclass
class Run:
    """One results file, ready to plot: its per-eta summary and per-IC fits, analysed if needed."""

    results: Results
    label: str
    eta: np.ndarray
    summary: dict[str, np.ndarray]
    fits: dict[str, np.ndarray]
    budget: int
    target: float

    @property
    def name(self) -> str:
        return self.results.path.stem

    def array(self, name: str, e: int, ics: np.ndarray) -> np.ndarray:
        """Dataset ``name`` at learning rate index ``e`` for initial conditions ``ics``."""
        return self.results.file[name][e][ics]

    def has_data(self, name: str, e: int) -> bool:
        """Whether dataset ``name`` has any finite value at learning rate index ``e``."""
        return bool(np.isfinite(self.results.file[name][e]).any())

    def has_summary(self) -> bool:
        """Whether any learning rate is analysed (one where every IC diverged counts: it is drawn as such)."""
        return bool(np.isfinite(self.summary["n_ic"]).any())

    def all_diverged(self) -> np.ndarray:
        """(n_eta,) bool: analysed, and every initial condition diverged (no lambda_nMLE)."""
        n_ic, n_diverged = self.summary["n_ic"], self.summary["n_diverged"]
        return (n_ic > 0) & (n_diverged == n_ic)

    def some_diverged(self) -> np.ndarray:
        """(n_eta,) bool: analysed, some but not every initial condition diverged."""
        n_ic, n_diverged = self.summary["n_ic"], self.summary["n_diverged"]
        return (n_diverged > 0) & (n_diverged < n_ic)

    def ball_divergence(self, e: int, ics: np.ndarray) -> np.ndarray:
        """(len(ics),) first epoch any network of each ball at learning rate ``e`` diverged (its
        ``diverged_epoch``, or a non-finite distance in a written epoch); -1: none."""
        file = self.results.file
        d = file["distances"][e][ics]  # (n, M, T+1); NaN in every replica: not written yet
        bad = ~np.isfinite(d).all(axis=1) & np.isfinite(d).any(axis=1)
        bad |= np.isinf(d).any(axis=1)
        first = np.where(bad.any(axis=1), bad.argmax(axis=1), -1)
        if "diverged_epoch" in file:
            records = first_divergence(file["diverged_epoch"][e][ics])
            first = np.where((records >= 0) & ((first < 0) | (records < first)), records, first)
        return first

    def reference_divergence(self, e: int, ics: np.ndarray) -> np.ndarray:
        """(len(ics),) first epoch with a non-finite loss of each reference at learning rate ``e``; < 0: none."""
        file = self.results.file
        if "diverged_epoch" not in file:
            return np.full(len(ics), -1)
        return file["diverged_epoch"][e][ics, 0].astype(np.int64)

    @property
    def has_sharpness(self) -> bool:
        """Whether the file holds ``sharpness`` (n_eta, q, n_s) and ``sharpness_epochs`` (n_s,)."""
        file = self.results.file
        if "sharpness" not in file or "sharpness_epochs" not in file:
            return False
        n_eta, q = self.eta.size, self.results.config.ics
        return file["sharpness"].shape == (n_eta, q, file["sharpness_epochs"].shape[0])


def load_run(results: Results) -> Run:
    """Summary and fits of an open results file, by the one refit policy: learning rates that are
    complete but not analysed yet (a live or interrupted run) are analysed with the file's parameters."""
    config = results.config
    analysis = results.analysis()
    return Run(results=results, label=describe(config), eta=analysis.eta, summary=analysis.summary,
               fits=analysis.fits, budget=int(config.tau_epochs), target=float(config.target))


def describe_parts(config: Any) -> list[str]:
    """Dataset, architecture, activation and L2 of a run, e.g. ``["iris", "10 hidden", "tanh"]``."""
    model = config.model
    arch = "CNN" if model.kind == "cnn" else "-".join(map(str, model.hidden)) + " hidden"
    parts = [config.dataset, arch, model.activation]
    if model.l2:
        parts.append(f"L2 {model.l2:g}")
    return parts


def describe(config: Any) -> str:
    return ", ".join(describe_parts(config))


def legend_labels(runs: Sequence[Run]) -> tuple[list[str], str]:
    """Per-run labels made of what differs between runs, and a title of what they share."""
    parts = [describe_parts(run.results.config) for run in runs]
    width = max(map(len, parts))
    parts = [p + [""] * (width - len(p)) for p in parts]
    varying = [k for k in range(width) if len({p[k] for p in parts}) > 1]
    common = ", ".join(parts[0][k] for k in range(width) if k not in varying and parts[0][k])
    labels = [", ".join(p[k] for k in varying if p[k]) or run.name for p, run in zip(parts, runs)]
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({run.name})" for label, run in zip(labels, runs)]
    return labels, common


# ========================================================== selections
def pick_distance_eta(run: Run) -> int | None:
    """The learning rate with the largest lambda_nMLE; before any is analysed, the last one with
    distances recorded (a live run); None when there are none yet."""
    lam = run.summary["lambda_mean"]
    if np.isfinite(lam).any():
        return int(np.nanargmax(lam))
    recorded = [e for e in range(run.eta.size) if run.has_data("distances", e)]
    return recorded[-1] if recorded else None


def pick_loss_etas(run: Run) -> list[int]:
    """Fig. 1's 0.01, 7.5 and 20 when the run has them, else the smallest, middle and largest eta."""
    paper = [_find_eta(run.eta, value) for value in (0.01, 7.5, 20.0)]
    if all(e is not None for e in paper):
        return paper  # type: ignore[return-value]
    order = np.argsort(run.eta)
    return sorted({int(order[0]), int(order[order.size // 2]), int(order[-1])}, key=lambda e: run.eta[e])


def pick_sharpness_etas(run: Run, at_most: int = 4) -> list[int]:
    """Learning rates with sharpness data; at most ``at_most``, evenly spread."""
    data = run.results.file["sharpness"][()]
    present = [int(e) for e in np.argsort(run.eta) if np.isfinite(data[e]).any()]
    if len(present) <= at_most:
        return present
    return [present[int(k)] for k in np.linspace(0, len(present) - 1, at_most).round()]


def _find_eta(etas: np.ndarray, value: float) -> int | None:
    hits = np.flatnonzero(np.isclose(etas, value, rtol=1e-6, atol=0.0))
    return int(hits[0]) if hits.size else None


def find_etas(run: Run, values: Sequence[float]) -> list[int]:
    """Indices of the learning rates ``values``; ValueError naming the missing one and those present."""
    indices = []
    for value in values:
        e = _find_eta(run.eta, value)
        if e is None:
            present = ", ".join(f"{x:g}" for x in run.eta)
            raise ValueError(f"eta {value:g} is not in {run.results.path} (it has {present})")
        indices.append(e)
    return indices


# ============================================================= figures
def log_eta_axis(runs: Sequence[Run]) -> bool:
    """Whether every learning rate of ``runs`` fits a log axis (:data:`LOG_AXIS_ETAS`); else the sweep
    figure draws log10(eta) on a linear axis, ticked 10^k (learning rates near the float limit)."""
    low, high = LOG_AXIS_ETAS
    return all(bool(((run.eta >= low) & (run.eta <= high)).all()) for run in runs)


def _eta_positions(eta: np.ndarray, factor: float, log_axis: bool) -> np.ndarray:
    """Where ``eta`` x ``factor`` sits on the eta axis, computed without overflow on the log10 axis."""
    return eta * factor if log_axis else np.log10(eta) + math.log10(factor)


def _eta_axis(ax: Any, log_axis: bool = True, span: tuple[float, float] | None = None) -> None:
    """The eta axis: log scale, plain numbers at 1, 2, 5 x 10^k over the learning rates' ``span``
    (matplotlib's own labels of a grid within a decade or two overlap)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.set_xlabel(_LABEL_ETA)
    if log_axis:
        ax.set_xscale("log")
        if span is not None:
            _plain_log_ticks(ax.xaxis, *span)
        return
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"$10^{{{value:g}}}$"))


def _plain_log_ticks(axis: Any, low: float, high: float, up_to: float = math.inf) -> None:
    """Log axis with plain numbers (20, 50, 100 instead of 2 x 10^1), ticked at 1, 2, 5 x 10^k when the
    data span [low, high] covers under three decades, else at powers of ten; ticks above ``up_to`` unlabelled."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    narrow = high < 1000 * low
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if narrow else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}" if value <= up_to * 1.001 else ""))
    axis.set_minor_formatter(NullFormatter())


@_styled
def sweep_figure(runs: Sequence[Run]) -> Figure:
    """lambda_nMLE +- std, rho (bootstrap CI) and <tau> +- std against eta; one colour and marker per run.

    Censored <tau> (some ICs never reached the target within the budget) has hollow markers (and, for
    one run, n_reached/n_ic above them); where no IC reached it, an open triangle sits on the budget
    line (several runs: stacked above it). Several runs are dodged by a few percent in eta. Learning
    rates where every IC diverged are shaded grey in every panel; where some did, a cross sits on the
    bottom edge of the lambda panel.
    """
    fig = Figure(figsize=(PAGE_WIDTH, 2.35 if len(runs) == 1 else 2.6), layout="constrained")
    ax_lam, ax_rho, ax_tau = fig.subplots(1, 3)
    labels, common = legend_labels(runs)
    log_axis = log_eta_axis(runs)
    censored_any = none_any = tangent_any = False
    for k, (run, label) in enumerate(zip(runs, labels)):
        style = dict(color=PALETTE[k % len(PALETTE)], marker=MARKERS[k % len(MARKERS)], capsize=1.5,
                     elinewidth=0.6, capthick=0.6, lw=0.9, ms=3.2)
        s = run.summary
        eta = _eta_positions(run.eta, DODGE ** (k - (len(runs) - 1) / 2), log_axis)
        ax_lam.errorbar(eta, s["lambda_mean"], yerr=s["lambda_std"], label=label, **style)
        if "lambda_tangent_mean" in s:  # docs/tangent.md: the eps -> 0 exponent, hollow and dashed
            ax_lam.errorbar(eta, s["lambda_tangent_mean"], yerr=s["lambda_tangent_std"],
                            **{**style, "ls": "--", "mfc": "white"})
            tangent_any = True
        rho = s["rho"]
        rho_err = np.clip([rho - s["rho_ci_low"], s["rho_ci_high"] - rho], 0, None)
        ax_rho.errorbar(eta, rho, yerr=np.where(np.isfinite(rho_err), rho_err, 0), **style)
        censored, none = _plot_tau(ax_tau, run, eta, style, annotate=len(runs) == 1, level=k)
        censored_any |= censored
        none_any |= none
    budgets = sorted({run.budget for run in runs})
    for budget in budgets:
        ax_tau.axhline(budget, color="0.6", lw=0.6, ls=":", zorder=0)
    ax_lam.axhline(0.0, color="0.5", lw=0.6, ls="--", zorder=0)
    ax_lam.set_ylabel(r"$\lambda_{\mathrm{nMLE}}$ (1/epoch)")
    ax_rho.set_ylabel(r"$\rho$ (%)")
    ax_rho.set_ylim(-5, 105)
    targets = sorted({run.target for run in runs})
    ax_tau.set_ylabel(r"$\langle\tau\rangle$ (epochs)" + (f" to {targets[0]:.0%} test acc." if len(targets) == 1 else ""))
    ax_tau.set_yscale("log")
    _plain_log_ticks(ax_tau.yaxis, 1.0, max(budgets), up_to=max(budgets))
    ax_tau.set_ylim(top=max(budgets) * NONE_STEP ** len(runs) * 2.0)  # room for triangles and labels
    etas = np.concatenate([run.eta for run in runs])
    for ax in (ax_lam, ax_rho, ax_tau):
        _eta_axis(ax, log_axis, (float(etas.min()), float(etas.max())))
    diverged = _mark_diverged((ax_lam, ax_rho, ax_tau), runs, log_axis)
    if tangent_any:
        diverged.append(Line2D([], [], color="0.3", marker="o", mfc="white", ls="--", lw=0.9, ms=3.2,
                               label=r"$\lambda_{\mathrm{tangent}}$ ($\epsilon \to 0$)"))
    if diverged:
        ax_lam.legend(handles=diverged, loc="best", fontsize=6, handlelength=1.5, frameon=True, framealpha=0.85,
                      edgecolor="none", borderpad=0.3)
    notes = []
    if censored_any:
        notes.append(Line2D([], [], color="0.3", marker="o", mfc="white", ls="", ms=3.2,
                            label="censored: " + ("n reached/n ICs" if len(runs) == 1 else "not all ICs reached it")))
    if none_any:
        notes.append(Line2D([], [], color="0.3", marker="^", mfc="white", ls="", ms=3.2,
                            label=r"no IC reached it: $\tau$ > budget"))
    notes.append(Line2D([], [], color="0.6", lw=0.6, ls=":", label="epoch budget"))
    ax_tau.legend(handles=notes, loc="best", fontsize=6, handlelength=1.5, frameon=True, framealpha=0.85,
                  edgecolor="none", borderpad=0.3)
    if len(runs) > 1:
        fig.legend(*ax_lam.get_legend_handles_labels(), loc="outside upper center", ncols=min(len(runs), 4),
                   title=common or None)
    else:
        fig.suptitle(runs[0].label)
    return fig


def _mark_diverged(axes: Sequence[Any], runs: Sequence[Run], log_axis: bool) -> list[Any]:
    """Shade the learning rates where every IC diverged (all panels) and cross, on the lambda panel's
    bottom edge, those where some did; returns the legend entries of what was drawn."""
    from matplotlib.patches import Patch

    shaded = crossed = False
    decades = np.log10(np.concatenate([run.eta for run in runs]))
    width = 10.0 ** max(0.1, DIVERGED_BAND * float(decades.max() - decades.min()))  # at least +-26 %
    for k, run in enumerate(runs):
        for e in np.flatnonzero(run.all_diverged()):
            low, high = (_eta_positions(run.eta[e:e + 1], f, log_axis)[0] for f in (1 / width, width))
            for ax in axes:
                ax.axvspan(low, high, color=DIVERGED_COLOUR, lw=0, zorder=0)
            shaded = True
        some = run.some_diverged()
        if some.any():
            eta = _eta_positions(run.eta[some], DODGE ** (k - (len(runs) - 1) / 2), log_axis)
            axes[0].plot(eta, np.full(eta.size, 0.03), ls="", marker="x", color=PALETTE[k % len(PALETTE)],
                         ms=3.2, mew=0.8, transform=axes[0].get_xaxis_transform(), clip_on=False)
            crossed = True
    entries = []
    if shaded:
        entries.append(Patch(color=DIVERGED_COLOUR, lw=0, label="every IC diverged"))
    if crossed:
        entries.append(Line2D([], [], color="0.3", marker="x", ls="", ms=3.2, mew=0.8, label="some ICs diverged"))
    return entries


def _plot_tau(ax: Any, run: Run, eta: np.ndarray, style: dict[str, Any], *, annotate: bool,
              level: int) -> tuple[bool, bool]:
    """<tau> +- std at ``eta``: filled when every IC reached the target, hollow (and, if ``annotate``,
    labelled n_reached/n_ic) when censored; error bars stop at 1 epoch (log axis). Returns whether
    any point was censored and whether any eta had no IC reach the target (triangles, stacked by ``level``)."""
    s = run.summary
    tau, n_reached, n_ic = s["tau_mean"], s["n_reached"], s["n_ic"]
    complete = np.isfinite(tau) & (n_reached == n_ic)
    censored = np.isfinite(tau) & (n_reached < n_ic)
    none = (n_reached == 0) & (n_ic > 0) & ~run.all_diverged()  # diverged: shaded, not "tau > budget"
    colour = style["color"]
    ax.plot(eta, tau, color=colour, lw=style["lw"])
    lower = np.minimum(s["tau_std"], tau - 1.0)
    yerr = np.array([np.clip(lower, 0, None), s["tau_std"]])
    for mask, face in ((complete, colour), (censored, "white")):
        if mask.any():
            ax.errorbar(eta[mask], tau[mask], yerr=yerr[:, mask], ls="", mfc=face,
                        **{k: v for k, v in style.items() if k != "lw"})
    for e in np.flatnonzero(censored) if annotate else ():
        ax.annotate(f"{int(n_reached[e])}/{int(n_ic[e])}", (eta[e], tau[e] + np.nan_to_num(s["tau_std"][e])),
                    xytext=(0, 2),
                    textcoords="offset points", fontsize=5.5, color="0.25", rotation=90, ha="center",
                    va="bottom")
    if none.any():
        ax.plot(eta[none], np.full(none.sum(), run.budget * NONE_STEP**level), ls="", marker="^", mfc="white",
                color=colour, ms=style["ms"], mew=0.8)
    return bool(censored.any()), bool(none.any())


@_styled
def distances_figure(run: Run, e: int, ics: np.ndarray) -> Figure:
    """Semi-log d(t) of the eps-balls at learning rate index ``e`` (Figs. 2-3).

    Each initial condition: replicas d_j(t) faint, their mean D(t) coloured by the local exponent
    Lambda, and the least-squares line of ln D over the fit window (black dashed); a ball that diverged
    (never fitted) is grey and dotted. Inset (three or more fitted ICs): histogram of Lambda, with their
    mean lambda_nMLE marked; else Lambda and R^2 as text.
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    d = run.array("distances", e, ics)  # (n, M, T+1)
    lam = run.fits["lyapunov"][e][ics]
    start, end, slope = (run.fits[k][e][ics] for k in ("start", "end", "slope"))
    diverged_at = run.ball_divergence(e, ics)
    diverged = diverged_at >= 0
    finite = np.isfinite(lam)
    low, high = (lam[finite].min(), lam[finite].max()) if finite.any() else (0.0, 1.0)
    if high - low < 1e-3:
        low, high = low - 0.05, high + 0.05
    cmap = colormaps["viridis"].resampled(256)
    norm = Normalize(low, high)

    def colour(value: float) -> Any:
        return cmap(0.9 * norm(value)) if math.isfinite(value) else "0.6"

    fig = Figure(figsize=(COLUMN_WIDTH, 2.7), layout="constrained")
    ax = fig.subplots()
    t = np.arange(d.shape[-1])
    faint = 0.6 if len(ics) == 1 else 0.25 if len(ics) <= 5 else 0.08
    for k in range(len(ics)):
        c = colour(lam[k])
        replicas = np.where(d[k] > 0, d[k], np.nan)
        with np.errstate(over="ignore"):
            mean = d[k].mean(axis=0)  # D(t), the curve the fit uses
        mean[~((mean > 0) & np.isfinite(mean))] = np.nan
        if diverged[k]:  # after it, the distances of blown-up networks are not data
            replicas[:, diverged_at[k]:] = mean[diverged_at[k]:] = np.nan
        ax.plot(t, replicas.T, color=c, lw=0.4, alpha=faint, rasterized=True)
        ax.plot(t, mean, color=c, lw=0.9, ls=":" if diverged[k] else "-")
        if diverged[k] and diverged_at[k] >= 1:
            ax.plot(diverged_at[k] - 1, mean[diverged_at[k] - 1], ls="", marker="x", color="0.4", ms=4, mew=0.9,
                    clip_on=False)
        if start[k] >= 0 and np.isfinite(slope[k]):
            window = np.arange(int(start[k]), int(end[k]) + 1)
            y = np.log(mean[window])
            intercept = np.mean(y) - slope[k] * np.mean(window)
            ax.plot(window, np.exp(intercept + slope[k] * window), color="k", lw=0.7, ls=(0, (2.5, 1.5)))
    tangent = "tangent_log_distance" in run.results.file
    if tangent:  # ln ||Phi_t xi_1||_1: the eps -> 0 limit of replica 1's d_1(t) (docs/tangent.md)
        with np.errstate(over="ignore"):
            linear = np.exp(run.array("tangent_log_distance", e, ics))
        linear[~np.isfinite(linear)] = np.nan
        for k in range(len(ics)):
            ax.plot(t, linear[k], color=colour(lam[k]), lw=0.7, ls=(0, (1, 1)))
    ax.set_yscale("log")
    ax.set_xlim(0, t[-1])
    ax.set_xlabel("epoch $t$")
    ax.set_ylabel(r"distance $d(t)$ ($L_1$)")
    which = f"{len(ics)} ICs" if len(ics) > 1 else f"IC {int(ics[0])}"
    ax.set_title(rf"{run.label}; $\eta$ = {run.eta[e]:g}; {which}", fontsize=7)
    key = [Line2D([], [], color="k", lw=0.7, ls=(0, (2.5, 1.5)), label="fit window")]
    if tangent:
        key.append(Line2D([], [], color="0.3", lw=0.7, ls=(0, (1, 1)), label=r"tangent $\|\Phi_t \xi_1\|_1$"))
    if diverged.any():
        key.append(Line2D([], [], color="0.6", lw=0.9, ls=":", marker="x", mec="0.4", ms=4,
                          label=f"diverged after x, not fitted ({diverged.sum()})"))
    if finite.sum() >= 3:
        _exponent_histogram(ax, lam[finite], cmap, norm)
        ax.legend(handles=key, loc="lower right", fontsize=6, borderaxespad=0.2)  # in the inset's white box
    else:
        ax.legend(handles=key, loc="best", fontsize=6)
    if 0 < finite.sum() < 3:
        r2 = run.fits["r2"][e][ics]
        text = "\n".join(rf"$\Lambda$ = {lam[k]:.2f} ($R^2$ = {r2[k]:.2f})" + ("" if len(ics) == 1 else f", IC {ics[k]}")
                         for k in np.flatnonzero(finite))
        ax.text(0.97, 0.04, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=6.5)
    return fig


def _exponent_histogram(ax: Any, lam: np.ndarray, cmap: Any, norm: Any) -> None:
    """Inset, lower right on a white box: histogram of local exponents coloured like the curves, mean marked."""
    from matplotlib.patches import Rectangle

    inset = ax.inset_axes((0.6, 0.2, 0.37, 0.26))
    ax.add_patch(Rectangle((0.53, 0.0), 0.47, 0.54, transform=ax.transAxes, facecolor="white", edgecolor="none",
                           alpha=0.9, zorder=2.9))  # keeps the curves off the inset's labels
    bins = int(np.clip(np.sqrt(lam.size) * 1.5, 4, 20)) if lam.size > 1 else 1
    counts, edges, patches = inset.hist(lam, bins=bins, edgecolor="white", linewidth=0.3)
    for patch, left, right in zip(patches, edges[:-1], edges[1:]):
        patch.set_facecolor(cmap(0.9 * norm(0.5 * (left + right))))
    mean = float(lam.mean())
    inset.axvline(mean, color="k", lw=0.7, ls="--")
    inset.set_title(rf"$\lambda_{{\mathrm{{nMLE}}}}$ = {mean:.2f}", fontsize=6, pad=2)
    inset.set_xlabel(r"$\Lambda$", fontsize=6, labelpad=1)
    inset.tick_params(labelsize=5, length=2, pad=1)
    inset.set_yticks([])
    inset.spines["left"].set_visible(False)
    inset.set_facecolor("white")
    inset.set_zorder(3)


@_styled
def loss_figure(run: Run, etas: Sequence[int], ics: np.ndarray) -> Figure:
    """Training loss of the reference networks against epoch, one panel per learning rate (Fig. 1).

    The first chosen initial condition is drawn bold, the others faint; the y axis is shared (log). A
    reference whose loss diverged (non-finite) ends in a cross at its last finite value.
    """
    width = min(PAGE_WIDTH, 0.4 + 2.2 * len(etas))
    fig = Figure(figsize=(width, 2.1), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(etas), sharey=True))
    crossed = None  # the last panel with a cross: it gets the legend
    for k, (ax, e) in enumerate(zip(axes, etas)):
        loss = run.array("loss", e, ics)
        loss[~np.isfinite(loss)] = np.nan  # after a divergence; inf would overflow the log axis
        colour = PALETTE[k % len(PALETTE)]
        t = np.arange(loss.shape[-1])
        if len(ics) > 1:
            ax.plot(t, loss[1:].T, color=colour, lw=0.4, alpha=0.3 if len(ics) <= 10 else 0.15, rasterized=True)
        ax.plot(t, loss[0], color=colour, lw=1.0)
        diverged = run.reference_divergence(e, ics)
        for i in np.flatnonzero((diverged >= 1) & (diverged <= t[-1])):
            ax.plot(diverged[i] - 1, loss[i, diverged[i] - 1], ls="", marker="x", color=colour, ms=4, mew=0.9,
                    clip_on=False)
            crossed = ax
        ax.set_title(rf"$\eta$ = {run.eta[e]:g}")
        ax.set_xlabel("epoch $t$")
        ax.set_xlim(0, t[-1])
    if crossed is not None:
        crossed.legend(handles=[Line2D([], [], color="0.3", marker="x", ls="", ms=4, mew=0.9,
                                       label="diverged after this epoch")], loc="best", fontsize=6)
    axes[0].set_yscale("log")
    axes[0].set_ylabel(r"training loss $\mathcal{L}(t)$")
    which = f"IC {int(ics[0])} bold, {len(ics) - 1} more faint" if len(ics) > 1 else f"IC {int(ics[0])}"
    fig.suptitle(f"{run.label}; {which}")
    return fig


@_styled
def sharpness_figure(run: Run, etas: Sequence[int], ics: np.ndarray) -> Figure:
    """Top Hessian eigenvalue against epoch, one panel per learning rate, with 2/eta dashed (Fig. 14).

    Each initial condition faint, their median bold (robust to the spikes of single ICs). The y axis
    is logarithmic in every panel when the positive values and 2/eta of all panels span more than a
    decade (values <= 0, a flat or indefinite Hessian, are drawn on its bottom edge), else linear.
    """
    epochs = run.results.file["sharpness_epochs"][()]
    series = [run.array("sharpness", e, ics) for e in etas]  # read once: the scale and the panels
    values = np.concatenate([sharp.ravel() for sharp in series] + [2.0 / run.eta[np.asarray(etas)]])
    positive = values[np.isfinite(values) & (values > 0)]
    logarithmic = positive.size > 0 and positive.max() > 10 * positive.min()
    width = min(PAGE_WIDTH, 0.4 + 2.2 * len(etas))
    fig = Figure(figsize=(width, 2.1), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(etas)))
    colours = [c for c in PALETTE if c != EDGE_OF_STABILITY_COLOUR]
    for k, (ax, e, sharp) in enumerate(zip(axes, etas, series)):
        colour = colours[k % len(colours)]
        if len(ics) > 1:
            ax.plot(epochs, sharp.T, color=colour, lw=0.4, alpha=0.3 if len(ics) <= 10 else 0.15, rasterized=True)
        ax.plot(epochs, _nanmedian(sharp), color=colour, lw=1.0,
                label="median over ICs" if len(ics) > 1 else f"IC {int(ics[0])}")
        ax.axhline(2.0 / run.eta[e], color=EDGE_OF_STABILITY_COLOUR, lw=0.9, ls="--", label=r"$2/\eta$")
        ax.set_title(rf"$\eta$ = {run.eta[e]:g}")
        ax.set_xlabel("epoch $t$")
        ax.set_xlim(epochs[0], epochs[-1])
        if logarithmic:
            ax.set_yscale("log", nonpositive="clip")  # values <= 0 sit on the bottom edge
            ax.set_ylim(bottom=0.5 * positive.min())
            _plain_log_ticks(ax.yaxis, positive.min(), positive.max())
    axes[0].legend(loc="upper right", fontsize=6, frameon=True, framealpha=0.85, edgecolor="none", borderpad=0.3)
    axes[0].set_ylabel(r"sharpness $\sigma_{\max}(t)$")
    fig.suptitle(f"{run.label}; {len(ics)} ICs" if len(ics) > 1 else f"{run.label}; IC {int(ics[0])}")
    return fig


def _nanmedian(values: np.ndarray) -> np.ndarray:
    """Median over axis 0 of the finite values; NaN (and no warning) where there are none."""
    out = np.full(values.shape[1:], np.nan)
    present = np.isfinite(values).any(axis=0)
    out[present] = np.nanmedian(values[:, present], axis=0)
    return out


@_styled
def cubic_figure(cubic: CubicFile, lambda_floor: float = -3.0) -> Figure:
    """Bifurcation diagram (top, Fig. 6) and Lyapunov exponent (bottom, Fig. 7) of the cubic map.

    lambda is clipped at ``lambda_floor`` (it tends to -inf at superstable points such as eta = 0.5);
    learning rates whose orbit escaped are shaded grey.
    """
    order = np.argsort(cubic.eta)
    eta, lam, escaped, bif = cubic.eta[order], cubic.lyapunov[order], cubic.escaped[order], cubic.bifurcation[order]
    fig = Figure(figsize=(COLUMN_WIDTH, 3.9), layout="constrained")
    ax_bif, ax_lam = fig.subplots(2, 1, sharex=True, height_ratios=(1.25, 1))
    points = max(bif.size, 1)
    ax_bif.plot(np.repeat(eta, bif.shape[1]), bif.ravel(), ls="", marker=".", ms=0.6 if points < 1e5 else 0.35,
                mew=0, color="k", alpha=0.6 if points < 1e5 else 0.35, rasterized=True)
    ax_bif.set_ylabel(r"$w$ (after transient)")
    ax_lam.axhline(0.0, color="0.5", lw=0.6, ls="--")
    ax_lam.plot(eta, lam, color=PALETTE[0], lw=0.6)
    chaotic = np.where(lam > 0, lam, np.nan)
    ax_lam.plot(eta, chaotic, color=PALETTE[1], lw=0.6, label=r"$\lambda > 0$ (chaotic)")
    finite = lam[np.isfinite(lam)]
    if finite.size:
        top = max(float(finite.max()), 0.0)
        ax_lam.set_ylim(max(float(finite.min()), lambda_floor) - 0.1, top + 0.15 * (top + 1))
    if escaped.any():
        for ax in (ax_bif, ax_lam):
            ax.fill_between(eta, 0, 1, where=escaped, transform=ax.get_xaxis_transform(), color="0.88", lw=0,
                            label="orbit escaped")
    ax_lam.legend(loc="lower left", fontsize=6)
    ax_lam.set_ylabel(r"Lyapunov exponent $\lambda$")
    ax_lam.set_xlabel(r"learning rate $\eta$")
    ax_lam.set_xlim(eta[0], eta[-1])
    return fig
