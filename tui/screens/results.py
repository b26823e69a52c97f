"""Results screen: the per-eta summary table; the highlighted eta shows every IC's ln D(t) and fit."""
from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from gdchaos_tui.fmt import num, pm
from gdchaos_tui.reader import IcFit, ReadError, RunReader, RunState
from gdchaos_tui.widgets.title import TitleBar
from gdchaos_tui.widgets.eta_charts import EtaCharts, eta_points
from gdchaos_tui.widgets.fit_curves import FitCurves

COLUMNS = ("η", "λ ± std", "ρ %", "τ ± std", "reached", "diverged")


class ResultsScreen(Screen):
    """lambda, rho and tau per learning rate; per-IC fits of the highlighted one."""

    BINDINGS = [Binding("escape", "back", "Back"), Binding("g", "charts", "Charts"), Binding("i", "ics", "ICs"), Binding("o", "app.open_file", "Open", show=False),
                Binding("n", "app.new_sweep", "New", show=False), Binding("q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    #summary { height: auto; max-height: 45%; border: round $primary-darken-2; }
    #note { height: auto; padding: 0 1; color: $text-muted; display: none; }
    #detail { height: 1fr; border: round $primary-darken-2; padding: 0 1; }
    #detail-title { color: $text-muted; }
    #charts { height: 1fr; border: round $primary-darken-2; display: none; }
    ResultsScreen.charts #charts { display: block; }
    ResultsScreen.charts #detail { display: none; }
    """

    class StateRead(Message):
        def __init__(self, state: RunState) -> None:
            super().__init__()
            self.state = state

    class FitsRead(Message):
        def __init__(self, e: int, fits: list[IcFit]) -> None:
            super().__init__()
            self.e, self.fits = e, fits

    class ReadFailed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, reader: RunReader, state: RunState | None = None) -> None:
        super().__init__()
        self.reader = reader
        self.state = state
        self._shown_eta: int | None = None

    def compose(self) -> ComposeResult:
        yield TitleBar()
        yield DataTable(cursor_type="row", zebra_stripes=True, id="summary")
        yield Static(id="note")
        with VerticalScroll(id="detail"):
            yield Static("pick a learning rate above", id="detail-title")
            yield FitCurves()
        yield EtaCharts(id="charts")
        yield Footer()

    def on_mount(self) -> None:
        self.title, self.sub_title = "gdchaos", f"results · {self.reader.path.name}"
        table = self.query_one("#summary", DataTable)
        table.border_title = "summary (↑↓ picks a learning rate)"
        self.query_one("#detail").border_title = "initial conditions (g: charts)"
        self.query_one("#charts").border_title = "against η (log scale) (i: initial conditions)"
        for label in COLUMNS:
            table.add_column(label)
        if self.state is not None:
            self._show(self.state)
        self._read()

    # ------------------------------------------------------------------ reading
    @work(thread=True, exclusive=True, group="summary")
    def _read(self) -> None:
        try:
            self.post_message(self.StateRead(self.reader.read()))
        except ReadError as exc:
            self.post_message(self.ReadFailed(str(exc)))

    @work(thread=True, exclusive=True, group="fits")
    def _read_fits(self, e: int) -> None:
        try:
            self.post_message(self.FitsRead(e, self.reader.eta_fits(e)))
        except ReadError as exc:
            self.post_message(self.ReadFailed(str(exc)))

    def on_results_screen_state_read(self, message: StateRead) -> None:
        self._show(message.state)

    def on_results_screen_fits_read(self, message: FitsRead) -> None:
        if message.e != self._shown_eta:
            return
        fits = message.fits
        values = [v for fit in fits for v in fit.log_d]
        scale = f", one scale {num(min(values))} … {num(max(values))}" if values else ""
        eta = self.state.rows[message.e].eta if self.state else float("nan")
        self.query_one("#detail-title", Static).update(
            f"η = {eta:g} · ln D(t) per IC{scale} · [b]fit window[/b] in colour")
        self.query_one(FitCurves).fits = tuple(fits)
        self.call_after_refresh(self._size_plots)

    def on_resize(self) -> None:
        self.call_after_refresh(self._size_plots)

    def _size_plots(self) -> None:
        """Taller plots per IC when the terminal has the room (1 to 4 lines each)."""
        curves = self.query_one(FitCurves)
        room = self.query_one("#detail").scrollable_content_region.height - 1  # less the title line
        curves.rows = max(1, min(4, room // max(1, len(curves.fits))))

    def on_results_screen_read_failed(self, message: ReadFailed) -> None:
        self.query_one("#note", Static).update(Text(message.error, style="red"))
        self.query_one("#note").display = True

    # ---------------------------------------------------------------- display
    def _show(self, state: RunState) -> None:
        self.state = state
        table = self.query_one("#summary", DataTable)
        cursor = table.cursor_row
        table.clear()
        for row in state.rows:
            reached = f"{row.n_reached}/{row.n_ic}" if row.n_ic is not None else "-"
            lam = Text("diverged", "red") if row.all_diverged else pm(row.lambda_mean, row.lambda_std)
            table.add_row(f"{row.eta:g}", lam, num(row.rho),
                          pm(row.tau_mean, row.tau_std, 4), reached,
                          "-" if row.n_diverged is None else str(row.n_diverged))
        table.move_cursor(row=min(cursor, len(state.rows) - 1))
        self.query_one(EtaCharts).show(eta_points(state.rows), state.config.tau_epochs)
        done = sum(row.status == "done" for row in state.rows)
        note = "" if state.complete else (f"run in progress: {done} of {len(state.rows)} learning rates "
                                          "complete (escape and v again to refresh)")
        diverged = ", ".join(f"{row.eta:g}" for row in state.rows if row.all_diverged)
        if diverged:
            note = " · ".join(filter(None, [note, f"every initial condition diverged at η = {diverged} (no λ)"]))
        self.query_one("#note", Static).update(note)
        self.query_one("#note").display = bool(note)
        self._pick(table.cursor_row)

    @on(DataTable.RowHighlighted, "#summary")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row == event.data_table.cursor_row:  # else stale: the cursor moved on since
            self._pick(event.cursor_row)

    def _pick(self, e: int) -> None:
        if self.state is None or e == self._shown_eta or not 0 <= e < len(self.state.rows):
            return
        self._shown_eta = e
        self.query_one("#detail-title", Static).update(f"η = {self.state.rows[e].eta:g}: reading…")
        self._read_fits(e)

    # ---------------------------------------------------------------- actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return len(self.app.screen_stack) > 2
        if action in ("charts", "ics"):
            return self.has_class("charts") == (action == "ics")
        return True

    def action_charts(self) -> None:
        """lambda, rho and tau against eta in place of the initial conditions."""
        self.add_class("charts")
        self.refresh_bindings()

    def action_ics(self) -> None:
        self.remove_class("charts")
        self.refresh_bindings()

    def action_back(self) -> None:
        self.app.pop_screen()
