"""The gdchaos-tui application: set up a sweep, run it in a child process, follow any results file."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from textual import work
from textual.app import App

from gdchaos import presets
from gdchaos.config import SweepConfig, load_toml
from gdchaos.errors import GdchaosError
from gdchaos_tui.process import SweepProcess
from gdchaos_tui.reader import ReadError, RunReader, RunState
from gdchaos_tui.screens.dialogs import ErrorScreen, QuitScreen
from gdchaos_tui.screens.live import LiveScreen
from gdchaos_tui.screens.results import ResultsScreen
from gdchaos_tui.screens.setup import SetupScreen

STOP_WAIT_SECONDS = 60.0  # how long quitting waits for a stopped run to flush and exit


class GdchaosTui(App):
    """Opens on the setup screen, or on a results file: its results when finished, else live."""

    TITLE = "gdchaos"

    def __init__(self, path: str | Path | None = None, *, config: SweepConfig | None = None,
                 preset: str | None = None) -> None:
        super().__init__()
        self.path = None if path is None else Path(path)
        self._config, self._preset = config, preset
        self._kept: SweepProcess | None = None

    def on_mount(self) -> None:
        if self.path is None:
            self.push_screen(SetupScreen(self._config, self._preset))
        else:
            self._open(self.path)

    @work(thread=True, group="open")
    def _open(self, path: Path) -> None:
        reader = RunReader(path)
        try:
            state = reader.read()
        except ReadError as exc:
            self.call_from_thread(self.push_screen, ErrorScreen(str(exc)))
        else:
            self.call_from_thread(self._show_file, reader, state)

    def _show_file(self, reader: RunReader, state: RunState) -> None:
        self.push_screen(ResultsScreen(reader, state) if state.complete else LiveScreen(reader, None, state))

    def on_setup_screen_start_requested(self, message: SetupScreen.StartRequested) -> None:
        process = SweepProcess(message.config, message.config.output)
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gdchaos-tui`` console script."""
    parser = argparse.ArgumentParser(
        prog="gdchaos-tui",
        description="Set up, run and watch gdchaos learning-rate sweeps. With FILE: open a results file "
                    "(finished: its results; still being written: follow it live).")
    parser.add_argument("file", nargs="?", help="a results file (.h5) written by gdchaos run")
    parser.add_argument("--preset", choices=presets.names(), help="preset that prefills the setup screen")
    parser.add_argument("--config", help="TOML config that prefills the setup screen")
    args = parser.parse_args(argv)
    config = None
    if args.config:
        try:
            config = load_toml(args.config, presets.get(args.preset or "iris-tanh"))
        except GdchaosError as exc:
            print(f"gdchaos-tui: error: {exc}", file=sys.stderr)
            return 2
    GdchaosTui(args.file, config=config, preset=args.preset).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
