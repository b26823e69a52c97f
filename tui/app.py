"""The gdchaos-tui application: set up a sweep, run it in a child process, follow any results file."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from gdchaos import presets
from gdchaos.config import SweepConfig, load_toml
from gdchaos.errors import GdchaosError
from gdchaos_tui.process import SweepProcess
from gdchaos_tui.reader import ReadError, RunReader
from gdchaos_tui.screens.dialogs import ErrorScreen, OpeningScreen, OpenFileScreen, QuitScreen
from gdchaos_tui.screens.help import HelpScreen
from gdchaos_tui.screens.live import LiveScreen
from gdchaos_tui.screens.results import ResultsScreen
from gdchaos_tui.screens.setup import SetupScreen

STOP_WAIT_SECONDS = 60.0  # how long quitting waits for a stopped run to flush and exit


class GdchaosTui(App):
    """Opens on the setup screen, or on a results file: its results when finished, else live."""

    TITLE = "gdchaos"
    BINDINGS = [
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),  # quits in every state
        Binding("q", "quit", "Quit", show=False),  # typed as a letter where a field has the focus
        Binding("f1,question_mark", "help", "Help"),
    ]

    def __init__(self, path: str | Path | None = None, *, config: SweepConfig | None = None,
                 preset: str | None = None, start: bool = False, overwrite: bool = False) -> None:
        super().__init__()
        self.path = None if path is None else Path(path)
        self._config, self._preset = config, preset
        self._start, self._overwrite = start, overwrite  # start the config at once (gdchaos run)
        self._kept: SweepProcess | None = None

    def on_mount(self) -> None:
        if self.path is None:
            self.push_screen(SetupScreen(self._config, self._preset, start=self._start, overwrite=self._overwrite))
        else:
            self.open_file(self.path)

    def open_file(self, path: Path) -> None:
        """Show ``path``: its results when finished, else live; an error screen when it cannot be read."""
        self.push_screen(OpeningScreen(str(path)))
        self._open(path)

    @work(thread=True, group="open")
    def _open(self, path: Path) -> None:
        reader = RunReader(path)
        try:
            state = reader.read()
        except ReadError as exc:
            self.call_from_thread(self._replace_opening, ErrorScreen(str(exc)))
        else:
            self.call_from_thread(self._replace_opening, ResultsScreen(reader, state) if state.complete
                                  else LiveScreen(reader, None, state))

    def _replace_opening(self, screen: Screen):
        """The file's screen in place of the opening one (awaitable: the caller waits until it is mounted)."""
        if isinstance(self.screen, OpeningScreen):
            return self.switch_screen(screen)
        return self.push_screen(screen)  # the user went elsewhere meanwhile

    # ------------------------------------------------------------------ commands
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The app's commands first in the palette (ctrl+p), then Textual's own."""
        yield SystemCommand("Open a results file", "Show a results file: live, finished or to resume",
                            self.action_open_file)
        yield SystemCommand("New sweep", "Set up and start a new sweep", self.action_new_sweep)
        if isinstance(screen, SetupScreen):
            yield SystemCommand("Find the learning rate", "A short find-lr probe of this config for the onset of "
                                "chaos, then an η grid centred on it (ctrl+l)", screen.action_find_lr)
        file = self.shown_file()
        if file is not None:
            yield SystemCommand(f"Plot {file.name}", "How to draw the paper's figures from this file",
                                self.action_plot)
        yield SystemCommand("Help", "Keys and what each field means", self.action_help)
        yield SystemCommand("Quit", "Quit (asks first while our run is going)", self.action_quit)
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command

    def shown_file(self) -> Path | None:
        """The results file of the screen on top, if it shows one."""
        reader = getattr(self.screen, "reader", None)
        return None if reader is None else reader.path

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_open_file(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.open_file(Path(path))

        self.push_screen(OpenFileScreen(), chosen)

    def action_new_sweep(self) -> None:
        self.push_screen(SetupScreen())

    def action_plot(self) -> None:
        file = self.shown_file()
        if file is not None:
            self.notify(f"gdchaos plot {file}  (figures into the current folder; needs the plot extra)",
                        title="plot from a shell", timeout=15)

    def on_setup_screen_start_requested(self, message: SetupScreen.StartRequested) -> None:
        process = SweepProcess(message.config, message.config.output)
        process.overwrite = message.overwrite
        try:
            process.start()
        except OSError as exc:
            self.notify(f"cannot start the run: {exc}", severity="error")
            return
        self.push_screen(LiveScreen(RunReader(process.output), process))

    # ------------------------------------------------------------------ quitting
    def running_process(self) -> SweepProcess | None:
        """Our own child run, if one is going."""
        for screen in self.screen_stack:
            if isinstance(screen, LiveScreen) and screen.process is not None and screen.process.running:
                return screen.process
        return None

    async def action_quit(self) -> None:
        """Quit; when our run is still going, ask whether to stop it or leave it running."""
        process = self.running_process()
        if process is None:
            self.exit()
            return
        if isinstance(self.screen, QuitScreen):  # asked twice: stop the run and quit
            self.screen.dismiss("stop")
            return

        def decide(choice: str | None) -> None:
            if choice == "keep":
                self._kept = process
                self.exit()
            elif choice == "stop":
                self.notify("stopping the run…")
                process.stop()
                self._exit_after(process)

        self.push_screen(QuitScreen(), decide)

    @work(thread=True, group="quit")
    def _exit_after(self, process: SweepProcess) -> None:
        process.wait(STOP_WAIT_SECONDS)
        self.call_from_thread(self.exit)

    def on_unmount(self) -> None:
        """Never leave a run behind by accident: stop ours unless the user chose to keep it."""
        process = self.running_process()
        if process is not None and process is not self._kept:
            process.stop()
        for screen in self.screen_stack:
            if isinstance(screen, LiveScreen) and screen.process is not None:
                screen.process.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gdchaos-tui`` console script."""
    parser = argparse.ArgumentParser(
        prog="gdchaos-tui",
        description="Set up, run and watch gdchaos learning-rate sweeps. With FILE: open a results file "
                    "(finished: its results; still being written: follow it live).")
    parser.add_argument("file", nargs="?", help="a results file (.h5) written by gdchaos run")
    parser.add_argument("--preset", choices=presets.names(), help="preset that prefills the setup screen")
    parser.add_argument("--config", help="TOML config that prefills the setup screen")
    parser.add_argument("--start", action="store_true",
                        help="start the config at once (as ctrl+s would): what `gdchaos run` on a terminal does")
    parser.add_argument("--overwrite", action="store_true",
                        help="with --start: replace an output file that holds another sweep")
    args = parser.parse_args(argv)
    config = None
    if args.config:
        try:
            config = load_toml(args.config, presets.get(args.preset or "iris-tanh"))
        except GdchaosError as exc:
            print(f"gdchaos-tui: error: {exc}", file=sys.stderr)
            return 2
    GdchaosTui(args.file, config=config, preset=args.preset, start=args.start, overwrite=args.overwrite).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
