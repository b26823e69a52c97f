"""Live screen: follows a results file while a run writes it, our own child process or a foreign one."""
from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, ProgressBar, Static

from gdchaos.config import from_dict
from gdchaos.text import duration
from gdchaos_tui.fmt import fixed, num
from gdchaos_tui.process import SweepProcess
from gdchaos_tui.reader import ReadError, RunReader, RunState
from gdchaos_tui.screens.dialogs import ResumeScreen
from gdchaos_tui.screens.results import ResultsScreen
from gdchaos_tui.timing import EtaClock
from gdchaos_tui.widgets.title import TitleBar
from gdchaos_tui.widgets.eta_charts import EtaCharts, eta_points
from gdchaos_tui.widgets.spark import LabelledSparkline
from gdchaos_tui.widgets.tangent_chart import TangentChart

POLL_SECONDS = 0.5
COLUMNS = (("eta", "η"), ("status", "status"), ("done", "done"), ("lambda", "λ"), ("rho", "ρ %"), ("tau", "τ"))


class LiveScreen(Screen):
    """Per-eta progress and statistics, curves of the IC in flight, overall progress and ETA."""

    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("s", "unfollow", "Stop following"),
        Binding("f", "follow", "Follow"),
        Binding("r", "resume", "Resume"),
        Binding("c", "follow_work", "Current η"),
        Binding("v", "results", "Results"),
        Binding("o", "app.open_file", "Open", show=False),
        Binding("n", "app.new_sweep", "New", show=False),
        Binding("q", "app.quit", "Quit"),
    ]
    DEFAULT_CSS = """
    #top { height: 1; padding: 0 1; }
    #status { width: 1fr; }
    #overall { width: auto; }
    #overall Bar { width: 24; }
    #body { height: 1fr; }
    #left { width: 44; height: 1fr; }
    #etas { height: auto; max-height: 45%; border: round $primary-darken-2; }
    #curves { height: 1fr; border: round $primary-darken-2; padding: 0 1; }
    #charts { width: 1fr; height: 1fr; border: round $primary-darken-2; }
    #message { height: auto; padding: 0 1; color: $error; }
    """

    class StateRead(Message):
        def __init__(self, state: RunState) -> None:
            super().__init__()
            self.state = state

    class ReadFailed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, reader: RunReader, process: SweepProcess | None = None,
                 state: RunState | None = None) -> None:
        super().__init__()
        self.reader = reader
        self.process = process
        self.state = state
        self.following = True
        self._reading = False
        self._stopping = False
        self._focus = 0  # learning rate whose curves are shown
        self._auto_focus: int | None = 0  # where the screen last moved the cursor; None: the user chose
        self._clock = EtaClock()
        self._eta_seconds: float | None = None
        self._error = ""
        self._announced = False
        self._texts: dict[str, str] = {}  # what the status lines show
        self._child_was_running = False

    @property
    def path(self) -> Path:
        return self.reader.path

    def compose(self) -> ComposeResult:
        yield TitleBar()
        with Horizontal(id="top"):
            yield Static(id="status")
            yield ProgressBar(total=1.0, show_eta=False, id="overall")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                table = DataTable(cursor_type="row", zebra_stripes=True, id="etas")
                table.border_title = "learning rates"
                yield table
                with Vertical(id="curves") as curves:
                    curves.border_title = "curves"
                    yield LabelledSparkline("ln d(t)", id="log-d")
                    tangent = TangentChart(id="tangent")
                    tangent.display = False  # until a state with tangent curves arrives
                    yield tangent
                    yield LabelledSparkline("loss", id="loss")
            charts = EtaCharts(id="charts")
            charts.border_title = "against η (log scale)"
            yield charts
        yield Static(id="message", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.title, self.sub_title = "gdchaos", f"live · {self.path.name}"
        # titles and the hidden tangent chart are set in compose: nested children may not be
        # mounted yet when the screen's Mount arrives
        table = self.query_one("#etas", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self._poll_timer = self.set_interval(POLL_SECONDS, self.poll)
        if self.state is not None:
            self._show(self.state)
        self.poll()

    def on_screen_suspend(self) -> None:
        self._poll_timer.pause()

    def on_screen_resume(self) -> None:
        self._poll_timer.resume()

    # ------------------------------------------------------------------ reading
    def poll(self) -> None:
        """Note what the child process did, then read the file again (in a worker thread)."""
        running = self.process is not None and self.process.running
        if running != self._child_was_running:
            self._child_was_running = running
            self.refresh_bindings()
            if self.state is not None:
                self._fill_table(self.state)
        if not running and self._stopping:
            self._stopping = False
            self._clock.reset()
        if self.process is not None and self.process.returncode == 0:
            self.process.confirm()
        if self.process is not None and (failure := self.process.failure()):
            self._error = failure
            if "being written by another" in failure:  # a foreign writer holds it: follow that one
                self.process, self._error = None, ""
                self.notify("another gdchaos run is writing this file; following it")
        settled = self.state is not None and self.state.complete and not running
        if self.following and not self._reading and not (settled and self._announced):  # a finished file stays
            self._reading = True
            self._read(self._focus)
        self._show_status()

    @work(thread=True, group="read")
    def _read(self, focus: int) -> None:
        try:
            state = self.reader.read(focus)
        except ReadError as exc:
            self.post_message(self.ReadFailed(str(exc)))
        else:
            self.post_message(self.StateRead(state))

    def on_live_screen_state_read(self, message: StateRead) -> None:
        self._reading = False
        if self.process is not None:
            self.process.confirm(message.state.config)  # the run accepted the output: keep its config
        self._error = "" if self._error.startswith("reading:") else self._error
        self._show(message.state)

    def on_live_screen_read_failed(self, message: ReadFailed) -> None:
        self._reading = False
        starting = self.process is not None and self.process.running and self.state is None
        if not starting:  # a file being created or reopened by its writer is briefly unreadable
            self._error = f"reading: {message.error} (retrying)"
        self._show_status()

    @on(DataTable.RowHighlighted, "#etas")
    def _focus_changed(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row != event.data_table.cursor_row:
            return  # stale: the cursor moved on since
        if event.cursor_row != self._auto_focus and self._auto_focus is not None:
            self._auto_focus = None  # the user picked a learning rate: stop following the work
            self.refresh_bindings()
        if event.cursor_row != self._focus:
            self._focus = event.cursor_row
            if not self._reading:
                self._reading = True
                self._read(self._focus)

    # ---------------------------------------------------------------- display
    def _show(self, state: RunState) -> None:
        changed = state != self.state or not self.query_one("#etas", DataTable).row_count
        self.state = state
        self._eta_seconds = self._clock.update(state.fraction, state.finished)
        if changed:  # most polls of a long run find nothing new: leave the widgets alone
            self._fill(state)
            self._follow_work(state)
        failed = self.process is not None and self.process.failure()
        if state.complete and not self._announced and not failed and not (self.process and self.process.running):
            self._announced = True
            self.notify("the sweep is complete: press v for the results", title=state.name)
        self._show_status()
        if changed:
            self.refresh_bindings()

    def _fill(self, state: RunState) -> None:
        self._fill_table(state)
        eta = state.rows[state.focus].eta
        where = f"IC {state.focus_ic} at η={eta:g}" if state.focus_ic is not None else f"η={eta:g}"
        self.query_one("#curves").border_title = f"curves · {where}"
        self.query_one("#log-d", LabelledSparkline).show(state.log_d)
        tangent = self.query_one(TangentChart)
        tangent.display = bool(state.log_tangent)  # runs made with --tangent
        if state.log_tangent:
            tangent.show(state.log_d1, state.log_tangent)
        self.query_one("#loss", LabelledSparkline).show(state.loss)
        self.query_one(EtaCharts).show(eta_points(state.rows), state.config.tau_epochs)
        self.query_one("#overall", ProgressBar).update(progress=state.fraction)

    def _follow_work(self, state: RunState) -> None:
        """Unless the user picked one, show the learning rate being computed (else the last done)."""
        statuses = [row.status for row in state.rows]
        target = (statuses.index("running") if "running" in statuses
                  else max((e for e, status in enumerate(statuses) if status == "done"), default=0))
        if self._auto_focus is not None and target != self._auto_focus:
            self._auto_focus = target
            self.query_one("#etas", DataTable).move_cursor(row=target)

    def action_follow_work(self) -> None:
        """Show the learning rate being computed again, after the user picked another."""
        self._auto_focus = -1  # no row: the next target moves the cursor
        if self.state is not None:
            self._follow_work(self.state)
        self.refresh_bindings()

    def _fill_table(self, state: RunState) -> None:
        table = self.query_one("#etas", DataTable)
        stopped = self.process is not None and not self.process.running  # our run: we know it is not
        cells = [(f"{row.eta:g}", "stopped" if stopped and row.status == "running" else row.status,
                  f"{row.progress:.0%}", "diverged" if row.all_diverged else fixed(row.lambda_mean), num(row.rho),
                  num(row.tau_mean, 4))
                 for row in state.rows]
        if table.row_count != len(cells):
            table.clear()
            for e, values in enumerate(cells):
                table.add_row(*values, key=str(e))
            return
        for e, values in enumerate(cells):
            for (key, _), value, old in zip(COLUMNS, values, table.get_row_at(e)):
                if value != old:
                    table.update_cell(str(e), key, value, update_width=True)

    def _show_status(self) -> None:
        state = self.state
        parts = [self._phase()]
        if state is not None:
            parts.append(f"units {state.units_done}/{state.units_total}")
            if not state.complete and self._writer_active():
                parts.append(f"ETA {duration(self._eta_seconds)}")
        for selector, text in (("#status", " · ".join(parts)), ("#message", self._error)):
            if self._texts.get(selector) != text:  # an update re-lays out the screen: only on changes
                self._texts[selector] = text
                self.query_one(selector, Static).update(text)

    def _writer_active(self) -> bool:
        return self.process.running if self.process is not None else self.following

    def _phase(self) -> str:
        state, process = self.state, self.process
        if process is not None and process.running:
            return "[b]stopping…[/b]" if self._stopping else ("[b]running[/b]" if state else "[b]starting…[/b]")
        if process is not None and process.failure():
            return "[b]failed[/b]"  # even next to a complete file: that file is not this run's
        if state is not None and state.complete:
            return "[b]finished[/b]"
        if process is not None:
            return "[b]stopped[/b] (r resumes)"
        return "[b]following[/b]" if self.following else "[b]not following[/b]"

    # ---------------------------------------------------------------- actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        owned = self.process is not None
        complete = self.state is not None and self.state.complete
        if action == "stop":
            return owned and self.process.running and not self._stopping
        if action == "unfollow":
            return not owned and self.following and not complete
        if action == "follow":
            return not owned and not self.following
        if action == "resume":
            return not (complete or (owned and self.process.running))
        if action == "follow_work":
            return self._auto_focus is None
        if action == "results":
            return self.state is not None
        return True

    def action_stop(self) -> None:
        """SIGTERM to our run: it finishes the epoch in hand, flushes and exits; the file stays resumable."""
        self._stopping = True
        self.process.stop()
        if self.state is not None:
            flight = [f"{row.eta:g}" for row in self.state.rows if row.status == "running"]
            if flight:
                self.notify(f"stopping: the work in flight at η = {', '.join(flight)} is redone on resume; "
                            "finished learning rates are kept", timeout=8)
        self._show_status()
        self.refresh_bindings()

    def action_unfollow(self) -> None:
        self.following = False
        self._clock.reset()
        self._show_status()
        self.refresh_bindings()

    def action_follow(self) -> None:
        self.following = True
        self.poll()
        self.refresh_bindings()

    def action_resume(self) -> None:
        """Start the run again; it continues where it stopped. A run this app did not start resumes with
        the file's config once the user has seen and confirmed it."""
        if self.process is None:
            if self.state is None:
                self.notify("nothing to resume yet: the file has not been read", severity="warning")
                return
            config = self.state.config

            def confirmed(resume: bool | None) -> None:
                if resume:
                    self.process = SweepProcess(config, self.path)
                    self._start_run()

            self.app.push_screen(ResumeScreen(from_dict({"output": str(self.path)}, config)), confirmed)
            return
        self._start_run()

    def _start_run(self) -> None:
        self._error, self._announced, self.following = "", False, True
        self._clock.reset()
        try:
            self.process.start()
        except OSError as exc:
            self._error = f"cannot start the run: {exc}"
        self.poll()
        self.refresh_bindings()

    def action_results(self) -> None:
        self.app.push_screen(ResultsScreen(self.reader, self.state))
