"""lambda_nMLE, rho and <tau> against a shared log-eta axis (textual-plotext): the paper's main result.

Values are plotted where known, lines only join learning rates that are neighbours on the grid (a
missing value is a gap, never bridged); lambda carries its ± std error bars; tau of learning rates
where some initial conditions never reached the target (censored) is marked, and those where none
did sit on the budget line as "none reached".
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual_plotext import PlotextPlot

from gdchaos.text import number

NICE = (1, 2, 5)  # tick mantissas of the log axis
Y_LABEL = 7  # characters of every y tick label: the charts' eta axes start in one column


@dataclass(frozen=True)
class EtaPoint:
    """One learning rate's statistics (NaN: unknown)."""

    eta: float
    lam: float = math.nan
    lam_std: float = math.nan
    rho: float = math.nan
    tau: float = math.nan
    n_reached: int | None = None
    n_ic: int | None = None
    lam_tangent: float = math.nan  # mean tangent exponent (runs with tangent curves)


def eta_points(rows: Sequence) -> list[EtaPoint]:
    """The points of a run's per-eta rows (``gdchaos_tui.reader.EtaRow``; NaN where not analysed yet)."""
    return [EtaPoint(row.eta, row.lambda_mean, row.lambda_std, row.rho, row.tau_mean, row.n_reached, row.n_ic,
                     row.lambda_tangent) for row in rows]


def log_ticks(low: float, high: float, most: int = 7) -> list[float]:
    """1-2-5 ticks spanning [low, high] (both > 0), at most ``most`` of them (sparser steps if needed)."""
    for mantissas in (NICE, (1, 3), (1,)):
        ticks = [m * 10.0 ** k for k in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
                 for m in mantissas]
        ticks = [t for t in ticks if low * 0.999 <= t <= high * 1.001]
        if len(ticks) <= most:
            return ticks or [low, high]
    return [low, high]


def runs(values: Sequence[float]) -> list[list[int]]:
    """Indices of consecutive finite values: each run is drawn as one line, gaps between them stay empty."""
    out: list[list[int]] = []
    for k, value in enumerate(values):
        if math.isfinite(value):
            if out and out[-1][-1] == k - 1:
                out[-1].append(k)
            else:
                out.append([k])
    return out


class Chart(PlotextPlot):
    """A PlotextPlot that builds its text only when its data or size changed (a build takes milliseconds:
    the live screen repaints often)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.version = 0
        self._built: tuple | None = None

    def redraw(self) -> None:
        self.version += 1
        self.refresh()

    def render(self):
        key = (self.version, self.size, self.app.theme)
        if self._built is None or self._built[0] != key:
            self._built = (key, super().render())
        return self._built[1]


class EtaCharts(Vertical):
    """Three charts sharing one log-eta axis: lambda_nMLE (1/epoch), rho (%), <tau> (epochs)."""

    DEFAULT_CSS = """
    EtaCharts { height: 1fr; }
    EtaCharts > Chart { height: 2fr; min-height: 3; }
    EtaCharts > #chart-tau { height: 3fr; min-height: 5; }  /* it carries the eta axis (3 more lines) */
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: tuple[EtaPoint, ...] = ()
        self.budget: int | None = None

    def compose(self) -> ComposeResult:
        for key in ("lambda", "rho", "tau"):
            yield Chart(id=f"chart-{key}")

    def on_mount(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def show(self, points: Sequence[EtaPoint], budget: int | None = None) -> None:
        """New statistics (every learning rate of the grid, known or not); redrawn only when they change."""
        points = tuple(points)
        if points == self.points and budget == self.budget:
            return
        self.points, self.budget = points, budget
        if self.is_mounted:
            self._draw()

    @property
    def known(self) -> int:
        """How many learning rates have a lambda."""
        return sum(math.isfinite(p.lam) for p in self.points)

    def _draw(self) -> None:
        if len(self.query(Chart)) < 3:  # data arrived before the charts were mounted: draw once they are
            self.call_after_refresh(self._draw)
            return
        points = self.points
        etas = [p.eta for p in points if p.eta > 0]
        x = [math.log10(p.eta) if p.eta > 0 else math.nan for p in points]
        room = max(12, self.size.width - Y_LABEL - 4)  # plotext drops a title wider than its plot area
        legend = ["⟨τ⟩ (epochs)", "△ some censored"] + ([f"▲ none ≥ {self.budget}"] if self.budget else [])
        while len("  ".join(legend)) > room and len(legend) > 1:
            legend[-1:] = [] if len(legend) > 2 or "some" not in legend[-1] else ["△ censored"]
        tangent = any(math.isfinite(p.lam_tangent) for p in points)
        lam_title = "λ_nMLE (1/epoch) ± std" + ("  ◆ λ_tangent" if tangent else "")
        charts = (("lambda", lam_title, [p.lam for p in points]),
                  ("rho", "ρ (% chaotic ICs)", [p.rho for p in points]),
                  ("tau", "  ".join(legend), [p.tau for p in points]))
        for key, title, values in charts:
            chart = self.query_one(f"#chart-{key}", Chart)
            plt = chart.plt
            plt.clear_figure()
            last = key == "tau"
            plt.title(title if self.known else f"{title}: no learning rate complete yet")
            plt.yaxes(True, False)
            if not last:  # one shared eta axis, drawn under the last chart (plotext loses a title with xaxes(True, ..))
                plt.xaxes(False, False)
            if etas:
                low, high = min(etas), max(etas)
                pad = max(0.02, 0.03 * (math.log10(high) - math.log10(low)))
                plt.xlim(math.log10(low) - pad, math.log10(high) + pad)
                ticks = log_ticks(low, high)
                if last:
                    plt.xticks([math.log10(t) for t in ticks], [f"{t:g}" for t in ticks])
                else:
                    plt.xticks([])
            drawn = self._series(plt, x, values)
            if key == "lambda":
                drawn += self._error_bars(plt, x)
                drawn += self._tangent(plt, x)
            if key == "rho":
                drawn += [0.0, 100.0]
            if key == "tau":
                drawn += self._censored_marks(plt, x)
            y_axis(plt, drawn, chart.size.height - (4 if last else 1))
            chart.redraw()

    @staticmethod
    def _series(plt, x: list[float], values: list[float]) -> list[float]:
        drawn: list[float] = []
        for run in runs(values):
            xs, ys = [x[k] for k in run], [values[k] for k in run]
            if len(run) > 1:
                plt.plot(xs, ys, marker="braille", color="cyan")
            plt.scatter(xs, ys, marker="●", color="cyan")
            drawn += ys
        return drawn

    def _tangent(self, plt, x: list[float]) -> list[float]:
        """lambda_tangent beside lambda_nMLE (docs/tangent.md), where the run has tangent curves."""
        known = [k for k, p in enumerate(self.points) if math.isfinite(p.lam_tangent)]
        if not known:
            return []
        ys = [self.points[k].lam_tangent for k in known]
        plt.scatter([x[k] for k in known], ys, marker="◆", color="magenta")
        return ys

    def _error_bars(self, plt, x: list[float]) -> list[float]:
        known = [k for k, p in enumerate(self.points) if math.isfinite(p.lam) and math.isfinite(p.lam_std)]
        if not known:
            return []
        plt.error([x[k] for k in known], [self.points[k].lam for k in known],
                  yerr=[self.points[k].lam_std for k in known], color="gray")
        return ([self.points[k].lam - self.points[k].lam_std for k in known]
                + [self.points[k].lam + self.points[k].lam_std for k in known])

    def _censored(self) -> list[int]:
        """Analysed learning rates where some initial conditions never reached the target."""
        return [k for k, p in enumerate(self.points)
                if p.n_ic and p.n_reached is not None and p.n_reached < p.n_ic]

    def _censored_marks(self, plt, x: list[float]) -> list[float]:
        censored = self._censored()
        some = [k for k in censored if math.isfinite(self.points[k].tau)]
        none = [k for k in censored if not math.isfinite(self.points[k].tau)]
        drawn: list[float] = []
        if some:
            ys = [self.points[k].tau for k in some]
            plt.scatter([x[k] for k in some], ys, marker="△", color="orange")
            drawn += ys
        if none and self.budget:
            plt.scatter([x[k] for k in none], [float(self.budget)] * len(none), marker="▲", color="red")
            drawn.append(float(self.budget))
        return drawn


def y_axis(plt, values: list[float], rows: int) -> None:
    """Limits and ticks (three, or the two ends on a plot of fewer than 5 ``rows``) whose labels have
    one width on every chart, so the eta axes line up."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        plt.yticks([0.0], ["-".rjust(Y_LABEL)])
        return
    low, high = min(values), max(values)
    if high == low:
        low, high = low - max(1.0, abs(low)) * 0.1, high + max(1.0, abs(high)) * 0.1
    plt.ylim(low, high)
    ticks = [low, (low + high) / 2, high] if rows >= 5 else [low, high]
    plt.yticks(ticks, [number(t).rjust(Y_LABEL) for t in ticks])
