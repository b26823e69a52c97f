"""One small bar plot per initial condition: ln D(t), the fit window in colour, Lambda and R^2."""
from __future__ import annotations

import math

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from gdchaos_tui.fmt import fixed
from gdchaos_tui.reader import IcFit

BARS = " ▁▂▃▄▅▆▇█"
LABEL_WIDTH = 6  # at least "IC 12 "; wider for more ICs
STATS_WIDTH = 30  # at least " Λ  0.417  R² 0.998  t 12-35"; wider for longer windows


class FitCurves(Widget):
    """Every IC of one learning rate on a common ln D scale, so their growth can be compared.

    ``rows`` is the height of each IC's plot; the screen sets it from the space it has.
    """

    DEFAULT_CSS = """
    FitCurves { height: auto; }
    FitCurves > .fit-curves--window { color: $accent; text-style: bold; }
    FitCurves > .fit-curves--outside { color: $foreground 45%; }
    """
    COMPONENT_CLASSES = {"fit-curves--window", "fit-curves--outside"}

    fits: reactive[tuple[IcFit, ...]] = reactive((), layout=True)
    rows: reactive[int] = reactive(1, layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self.fits) * self.rows)

    def render(self) -> Text:
        if not self.fits:
            return Text("no initial condition computed yet", style="dim")
        values = [v for fit in self.fits for v in fit.log_d]
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        label = max(LABEL_WIDTH, len(f"IC {max(fit.ic for fit in self.fits)} "))
        stats = max(STATS_WIDTH, *(len(_stats(fit)) for fit in self.fits))  # long epochs: wider, never wrapped
        width = max(8, self.size.width - label - stats)
        styles = (self.get_component_rich_style("fit-curves--window"),
                  self.get_component_rich_style("fit-curves--outside"))
        lines = [line for fit in self.fits for line in self._plot(fit, low, high, width, label, styles)]
        text = Text("\n").join(lines)
        text.no_wrap, text.overflow = True, "ellipsis"  # one line per row, so every IC stays reachable
        return text

    def _plot(self, fit: IcFit, low: float, high: float, width: int, label_width: int,
              styles: tuple[Style, Style]) -> list[Text]:
        """``rows`` lines: bars (column means of ln D) with the label and the fit on the bottom line."""
        window, outside = styles
        steps = (len(BARS) - 1) * self.rows
        n = len(fit.log_d)
        columns = []  # (height in steps, inside the fit window)
        for column in range(width if n else 0):
            first = column * n // width
            last = max(first, (column + 1) * n // width - 1)
            chunk = fit.log_d[first:last + 1]
            level = (sum(chunk) / len(chunk) - low) / ((high - low) or 1.0)
            inside = fit.start >= 0 and first <= fit.end and last >= fit.start
            columns.append((max(1, round(level * steps)), inside))
        lines = []
        for row in reversed(range(self.rows)):
            label = f"IC {fit.ic}" if row == 0 else ""
            line = Text(label.ljust(label_width))
            for height, inside in columns:
                part = min(len(BARS) - 1, max(0, height - row * (len(BARS) - 1)))
                line.append(BARS[part], window if inside else outside)
            line.append(" " * (width - len(columns)))
            if row == 0:
                line.append_text(_stats(fit))
            lines.append(line)
        return lines


def _stats(fit: IcFit) -> Text:
    if fit.diverged_at >= 0:
        return Text(f" diverged at epoch {fit.diverged_at}", "red")
    if fit.start < 0 or not math.isfinite(fit.lyapunov):
        return Text(" no fit", "dim")
    return Text(f" Λ {fixed(fit.lyapunov):>6}  R² {fixed(fit.r2):>5}  t {fit.start}-{fit.end}")
