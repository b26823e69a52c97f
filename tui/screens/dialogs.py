"""Small screens: a file that cannot be shown, resuming a run started elsewhere, quitting while our run goes."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Label, Static

from gdchaos.config import SweepConfig


class ErrorScreen(Screen):
    """Why a file cannot be opened, in one line; n starts a new sweep instead."""

    BINDINGS = [Binding("n", "new", "New sweep"), Binding("q", "app.quit", "Quit")]
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

    def action_new(self) -> None:
        from gdchaos_tui.screens.setup import SetupScreen

        self.app.switch_screen(SetupScreen())


class QuitScreen(ModalScreen[str | None]):
    """Our run is still going: stop it (resumable) or leave it running, then quit; escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("s", "dismiss('stop')", "Stop and quit"),
                Binding("k", "dismiss('keep')", "Keep running and quit")]
    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    #dialog { width: 60; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    #buttons { grid-size: 3; grid-gutter: 0 1; height: 3; margin-top: 1; }
    #buttons Button { width: 100%; }
    """

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("A sweep is still running. Stop it (the file stays resumable) or leave it running "
                        "in the background (attach later with gdchaos-tui FILE)?")
            with Grid(id="buttons"):
                yield Button("Stop & quit", variant="warning", id="stop")
                yield Button("Keep running", id="keep")
                yield Button("Cancel", id="cancel")
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)


class ResumeScreen(ModalScreen[bool]):
    """Resuming a file this app did not start: show the config it will run (read from the file) and ask.

    The run checks the file against this config; a crafted file could carry any config, so the
    user sees what will run (dataset, network, learning rates, output) before it starts.
    """

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel"), Binding("y", "dismiss(True)", "Resume")]
    DEFAULT_CSS = """
    ResumeScreen { align: center middle; }
    #dialog { width: 80; max-height: 90%; height: auto; border: thick $primary; background: $surface;
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
