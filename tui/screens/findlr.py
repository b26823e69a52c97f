"""Find the learning rate: find-lr for the setup screen's config (a child process), its suggestions, and
the offer to fill the η grid with a sweep centred on the onset (what ``gdchaos run --etas auto:N`` sweeps)."""
from __future__ import annotations

import inspect
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from gdchaos.checks import check_int
from gdchaos.config import SweepConfig
from gdchaos.errors import GdchaosError
from gdchaos.findlr import METHODS, FindLRResult, centred_grid, check_options, find_lr
from gdchaos.grid import AUTO_COUNT, MAX_LEARNING_RATES, parse_etas
from gdchaos.text import duration
from gdchaos_tui.probe import ProbeProcess

DEFAULTS = {name: option.default for name, option in inspect.signature(find_lr).parameters.items()
            if option.default is not inspect.Parameter.empty}  # find-lr's: ics, epochs, target_rho, ...
TICK_SECONDS = 1.0  # how often the running probe's clock is redrawn


def probe_output(output: str) -> Path:
    """Where the probe of a sweep writing ``output`` goes: ``NAME-find-lr.h5`` beside it, or the first free
    ``NAME-find-lr-2.h5``, ... (a probe already there is never replaced)."""
    path = Path(output)
    first = path.with_name(f"{path.stem}-find-lr.h5")
    for n in range(1, 10_000):
        candidate = first if n == 1 else first.with_name(f"{first.stem}-{n}.h5")
        if not candidate.exists():
            return candidate
    return first.with_name(f"{first.stem}-new.h5")


def _integer(text: str) -> int | str:
    """The int of ``text``; the text itself when it is none (check_int then names the field)."""
    try:
        return int(text.strip())
    except ValueError:
        return text.strip()


def suggestion_lines(result: FindLRResult) -> list[str]:
    """The named suggestions, one a line; the onset with its rho, then the notes."""
    rows = {row.eta: row for row in result.rows}
    lines = []
    for name, value in vars(result.suggestions).items():
        text = "not found" if value is None else f"{value:.4g}"
        row = rows.get(value)
        if name == "onset" and row is not None:
            text += f"   ρ {row.rho:.0f}% of {row.ics} ICs [{row.rho_low:.0f}, {row.rho_high:.0f}]"
        elif name == "eos_init" and value is not None:
            text += "   2/λ_max(θ₀)"
        lines.append(f"{name:<12} {text}")
    scanned = sum(row.round == 0 for row in result.rows)
    lines.append(f"{scanned} η scanned in [{result.bracket[0]:.4g}, {result.bracket[1]:.4g}], "
                 f"{len(result.rows) - scanned} bisection rounds, {result.ics} ICs × {result.epochs} epochs "
                 f"({result.method}), {duration(result.seconds)}")
    lines += [f"note: {note}" for note in result.notes]
    return lines


class FindLRScreen(ModalScreen[str | None]):
    """Probe the config for the onset of chaos; dismisses with the η grid to fill, or None."""

    BINDINGS = [Binding("escape", "close", "Cancel / close"), Binding("ctrl+q", "app.quit", "Quit", priority=True)]
    DEFAULT_CSS = """
    FindLRScreen { align: center middle; }
    #dialog { width: 78; max-width: 100%; height: auto; max-height: 100%; border: thick $accent;
              background: $surface; padding: 0 1; }
    #options { height: 1; margin-top: 1; }
    #options Label { color: $text-muted; margin: 0 1 0 1; }
    #options #method { width: 12; }
    #options Input { width: 7; }
    #status { height: 2; margin-top: 1; color: $text-muted; }
    #status.bad { color: $error; }
    #found { height: auto; max-height: 10; overflow-y: auto; margin-top: 1; }
    #buttons { height: 3; margin-top: 1; }
    #buttons Button { margin-right: 1; }
    """

    class Progress(Message):
        def __init__(self, line: str) -> None:
            super().__init__()
            self.line = line

    class Finished(Message):
        """The probe ended: its result, or why not (``problem``; None and no result: stopped)."""

        def __init__(self, result: FindLRResult | None, problem: str | None) -> None:
            super().__init__()
            self.result, self.problem = result, problem

    def __init__(self, config: SweepConfig) -> None:
        super().__init__()
        self.config = config
        self.process: ProbeProcess | None = None
        self.result: FindLRResult | None = None
        self._started = 0.0
        self._line = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = "find the learning rate"
            model = self.config.model
            shape = "CNN" if model.kind == "cnn" else "hidden " + ",".join(str(h) for h in model.hidden)
            yield Static(f"{self.config.dataset} · {shape} · {model.activation}: a short find-lr probe "
                         "for the onset of chaos", id="about", markup=False)
            with Horizontal(id="options"):
                yield Label("method")
                yield Select([(name, name) for name in METHODS], value=METHODS[0], allow_blank=False,
                             compact=True, id="method")
                yield Label("ICs")
                yield Input(str(DEFAULTS["ics"]), compact=True, id="ics")
                yield Label("epochs")
                yield Input(str(DEFAULTS["epochs"]), compact=True, id="epochs")
                yield Label("sweep η")
                yield Input(str(AUTO_COUNT), compact=True, id="count")
            yield Static("enter or Find starts the probe; escape cancels it", id="status", markup=False)
            yield Static(id="found", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Find", variant="primary", id="find")
                yield Button("Fill η grid", variant="success", id="fill", disabled=True)
                yield Button("Close", id="close")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#find", Button).focus()
        self.set_interval(TICK_SECONDS, self._tick)

    # ------------------------------------------------------------------ probing
    def _options(self) -> tuple[str, int, int]:
        """method, ICs and epochs from the fields (GdchaosError naming the first bad one)."""
        method = str(self.query_one("#method", Select).value)
        ics, epochs = (_integer(self.query_one(f"#{key}", Input).value) for key in ("ics", "epochs"))
        check_options(method, ics, epochs, DEFAULTS["target_rho"], DEFAULTS["refine"], DEFAULTS["points"])
        return method, ics, epochs

    @on(Button.Pressed, "#find")
    @on(Input.Submitted)
    def action_find(self) -> None:
        """Start the probe with the fields' options (one at a time)."""
        if self.process is not None and self.process.running:
            return
        try:
            method, ics, epochs = self._options()
        except GdchaosError as exc:
            self._status(f"✗ {exc}", bad=True)
            return
        self.result = None
        self.query_one("#found", Static).update("")
        self.query_one("#fill", Button).disabled = True
        self.query_one("#find", Button).disabled = True
        self.process = ProbeProcess(self.config, probe_output(self.config.output), method=method, ics=ics,
                                    epochs=epochs)
        self._started, self._line = time.monotonic(), "starting"
        self._status(self._running_text())
        self._probe(self.process)

    @work(thread=True, exclusive=True, group="find-lr")
    def _probe(self, process: ProbeProcess) -> None:
        """Run the child to its end; its lines as Progress, then Finished."""
        try:
            process.start()
        except OSError as exc:
            self.post_message(self.Finished(None, f"cannot start find-lr: {exc}"))
            return
        for line in process.lines():
            self.post_message(self.Progress(line))
        process.wait()
        if process.stopped:
            self.post_message(self.Finished(None, None))
            return
        problem = process.failure()
        if problem is not None:
            self.post_message(self.Finished(None, problem))
            return
        try:
            self.post_message(self.Finished(process.result(), None))
        except (GdchaosError, OSError) as exc:
            self.post_message(self.Finished(None, str(exc)))

    def _running_text(self) -> str:
        return f"running find-lr · {duration(time.monotonic() - self._started)} · {self._line}  (escape cancels)"

    def _tick(self) -> None:
        if self.process is not None and self.process.running:
            self._status(self._running_text())

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        self._line = message.line
        self._status(self._running_text())

    @on(Finished)
    def _finished(self, message: Finished) -> None:
        self.query_one("#find", Button).disabled = False
        if message.problem is not None:
            self._status(f"✗ {message.problem}", bad=True)
            return
        if message.result is None:
            kept = self.process is not None and self.process.output.exists()
            self._status("find-lr cancelled" + (f" (its scan so far is kept in {self.process.output.name})"
                                                if kept else ""))
            return
        self.show(message.result)

    def show(self, result: FindLRResult) -> None:
        """The suggestions and notes of ``result``; Fill is offered only with an onset."""
        self.result = result
        self.query_one("#found", Static).update("\n".join(suggestion_lines(result)))
        kept = f" · probe kept in {Path(result.path).name}" if result.path else ""
        onset = result.suggestions.onset
        if onset is None:
            self._status(f"no onset found: the η grid is left as it is{kept}")
            return
        low, high = parse_etas(centred_grid(result, 2))
        fill = self.query_one("#fill", Button)
        fill.disabled = False
        fill.focus()
        self._status(f"Fill: a sweep centred on the onset {onset:.4g}, η in [{low:.4g}, {high:.4g}]{kept}")

    def _status(self, text: str, bad: bool = False) -> None:
        status = self.query_one("#status", Static)
        status.update(text)
        status.set_class(bad, "bad")

    # ------------------------------------------------------------------ leaving
    def grid(self) -> str:
        """The η grid centred on the onset, in the grammar of the η field (GdchaosError: none)."""
        if self.result is None:
            raise GdchaosError("etas: no find-lr result yet")
        count = check_int("sweep η", _integer(self.query_one("#count", Input).value), 2, MAX_LEARNING_RATES)
        return centred_grid(self.result, count)

    @on(Button.Pressed, "#fill")
    def action_fill(self) -> None:
        try:
            self.dismiss(self.grid())
        except GdchaosError as exc:
            self._status(f"✗ {exc}", bad=True)

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        """Cancel a running probe; else close."""
        if self.process is not None and self.process.running:
            self.process.stop()
            self._status("cancelling find-lr…")
            return
        self.dismiss(None)

    def on_unmount(self) -> None:
        """Never leave a probe behind."""
        if self.process is not None:
            self.process.stop()
