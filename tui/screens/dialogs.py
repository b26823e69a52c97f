"""Small screens: a file that cannot be shown, resuming a run started elsewhere, quitting while our run goes."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Static

from gdchaos.config import SweepConfig


class OpeningScreen(Screen):
    """Shown while a file given on the command line is checked and read: never a blank screen, and
    q / ctrl+c quit even if the read takes long."""

    BINDINGS = [Binding("q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    OpeningScreen { align: center middle; }
    #opening { width: auto; max-width: 90%; height: auto; padding: 1 2; color: $text-muted; }
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        yield Static(f"opening {self.path} …", id="opening", markup=False)
        yield Footer()


class ErrorScreen(Screen):
    """Why a file cannot be opened, in one line; n starts a new sweep instead."""

    BINDINGS = [Binding("n", "app.new_sweep", "New sweep"), Binding("o", "app.open_file", "Open file"),
                Binding("q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    ErrorScreen { align: center middle; }
    #error { width: auto; max-width: 90%; height: auto; border: round $error; padding: 1 2; }
    """

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        error = Static(self.message, id="error", markup=False)
        error.border_title = "gdchaos: cannot open this file"
        yield error
        yield Footer()


class QuitScreen(ModalScreen[str | None]):
    """Our run is still going: stop it (resumable) or leave it running, then quit; escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("s", "dismiss('stop')", "Stop and quit"),
                Binding("k", "dismiss('keep')", "Keep running and quit"),
                Binding("q", "dismiss('stop')", "Stop and quit", show=False)]  # q twice: stop and quit
    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    #dialog { width: 76; max-width: 100%; height: auto; border: thick $warning; background: $surface;
              padding: 1 2; }
    #dialog Label { width: 1fr; }
    #buttons { grid-size: 3; grid-gutter: 0 1; height: 3; margin-top: 1; }
    #buttons Button { width: 100%; min-width: 8; }
    """

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("A sweep is still running. Stop it (the file stays resumable) or leave it running "
                        "in the background (attach later with gdchaos-tui FILE)?")
            with Grid(id="buttons"):
                yield Button("Stop (s)", variant="warning", id="stop")
                yield Button("Keep (k)", id="keep")
                yield Button("Cancel", id="cancel")
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)


class ResumeScreen(ModalScreen[bool]):
    """Resuming a file this app did not start: show the config it will run (read from the file) and ask.

    The run checks the file against this config; a crafted file could carry any config, so the
    user sees what will run (dataset, network, learning rates, output) before it starts.
    """

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel"), Binding("y", "dismiss(True)", "Resume"),
                Binding("q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    ResumeScreen { align: center middle; }
    #dialog { width: 80; max-width: 100%; max-height: 100%; height: auto; border: thick $primary; background: $surface;
              padding: 1 2; }
    #config { height: auto; max-height: 16; overflow-y: auto; margin-top: 1; }
    #buttons { grid-size: 2; grid-gutter: 0 1; height: 3; margin-top: 1; }
    #buttons Button { width: 100%; }
    """

    def __init__(self, config: SweepConfig) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        config = self.config
        network = "CNN" if config.model.kind == "cnn" else "-".join(str(h) for h in config.model.hidden)
        with Vertical(id="dialog"):
            yield Label(f"Resume this run? {config.dataset}, {config.model.activation} {network}, "
                        f"{len(config.etas)} learning rates x {config.ics} ICs, {config.epochs} epochs, "
                        f"into {config.output}")
            yield Static(config.to_toml(), id="config", markup=False)
            with Grid(id="buttons"):
                yield Button("Resume", variant="primary", id="resume")
                yield Button("Cancel", id="cancel")
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "resume")


class OutputTakenScreen(ModalScreen[str | None]):
    """Start was asked for an output that holds something else: overwrite it (only a gdchaos results
    file of another sweep), write to a free name instead, or cancel. Nothing is written before a choice."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("n", "dismiss('rename')", "New name"),
                Binding("o", "overwrite", "Overwrite"), Binding("q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    OutputTakenScreen { align: center middle; }
    #dialog { width: 76; max-width: 100%; height: auto; border: thick $warning; background: $surface;
              padding: 1 2; }
    #dialog Label { width: 1fr; }
    #buttons { grid-size: 3; grid-gutter: 0 1; height: 3; margin-top: 1; }
    #buttons Button { width: 100%; min-width: 8; }
    """

    def __init__(self, problem: str, free_name: str, can_overwrite: bool) -> None:
        super().__init__()
        self.problem, self.free_name, self.can_overwrite = problem, free_name, can_overwrite

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.problem, markup=False)
            yield Label(f"Write to {self.free_name} instead (n), "
                        + ("replace the file (o), " if self.can_overwrite else "")
                        + "or cancel (escape)?", markup=False)
            with Grid(id="buttons"):
                yield Button("New name (n)", variant="primary", id="rename")
                yield Button("Overwrite (o)", variant="error", id="overwrite", disabled=not self.can_overwrite)
                yield Button("Cancel", id="cancel")
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.can_overwrite if action == "overwrite" else True

    def action_overwrite(self) -> None:
        self.dismiss("overwrite")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)


class OpenFileScreen(ModalScreen[str | None]):
    """Ask for a results file to open; enter opens it, escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    OpenFileScreen { align: center middle; }
    #dialog { width: 76; max-width: 100%; height: auto; border: thick $primary; background: $surface;
              padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Results file to open (enter opens, escape cancels):")
            yield Input(placeholder="sweep.h5", id="path")
        yield Footer()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)
