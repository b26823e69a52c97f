"""Small screens: a file that cannot be shown, and quitting while our run is still going."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Label, Static


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
