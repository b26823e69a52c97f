"""A Sparkline with a title line that states its range (a sparkline has no axes)."""
from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline

from gdchaos_tui.fmt import num


class LabelledSparkline(Vertical):
    """Title, then min and max of the data, above a Sparkline that fills the remaining height."""

    DEFAULT_CSS = """
    LabelledSparkline { height: 1fr; min-height: 2; }
    LabelledSparkline > Label { width: 1fr; height: 1; }
    LabelledSparkline > Sparkline { height: 1fr; min-height: 1; }
    """

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._heading = title
        self._values: list[float] = []

    @property
    def data(self) -> list[float]:
        return list(self._values)

    def compose(self) -> ComposeResult:
        yield Label(self._caption())
        yield Sparkline(self._values, summary_function=_mean)

    def show(self, values: Sequence[float]) -> None:
        """New data (finite values only); shown now, or when the widget is composed."""
        values = list(values)
        if values == self._values:
            return
        self._values = values
        for label in self.query(Label):
            label.update(self._caption())
        for sparkline in self.query(Sparkline):
            sparkline.data = values

    def _caption(self) -> str:
        if not self._values:
            return f"[b]{self._heading}[/b]  [dim]no data yet[/dim]"
        low, high = min(self._values), max(self._values)
        return f"[b]{self._heading}[/b]  [dim]min[/dim] {num(low)}  [dim]max[/dim] {num(high)}"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
