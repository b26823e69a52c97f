"""ln d_1(t) of the first replica and the tangent curve ln ||Phi_t xi_1||_1 on one axis (docs/tangent.md).

The two agree while the ball is small; d_1 saturates at the size of the explored region, the tangent
curve, its eps -> 0 limit, keeps growing. Shown only for runs made with ``--tangent``.
"""
from __future__ import annotations

from collections.abc import Sequence

from gdchaos_tui.widgets.eta_charts import Chart, y_axis


class TangentChart(Chart):
    """ln d_1(t) (cyan) and ln ||Phi_t xi_1||_1 (magenta) against the epoch."""

    DEFAULT_CSS = """
    TangentChart { height: 2fr; min-height: 6; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.curves: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())

    def on_mount(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def show(self, log_d1: Sequence[float], log_tangent: Sequence[float]) -> None:
        """New curves (finite prefixes: epochs written so far); redrawn only when they change."""
        curves = (tuple(log_d1), tuple(log_tangent))
        if curves == self.curves:
            return
        self.curves = curves
        if self.is_mounted:
            self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.title("ln d₁(t) (cyan) · ln ‖Φₜξ₁‖₁ tangent (magenta)")
        drawn: list[float] = []
        for values, color in zip(self.curves, ("cyan", "magenta")):
            if values:
                plt.plot(list(range(len(values))), list(values), marker="braille", color=color)
                drawn += list(values)
        plt.xlabel("epoch")
        y_axis(plt, drawn, self.size.height - 4)
        self.redraw()
