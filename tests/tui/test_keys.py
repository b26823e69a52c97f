"""gdchaos-tui: quitting in every state, the help screen, the command palette, and a safe start."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import Input, Select

from gdchaos import presets
from gdchaos.config import from_dict
from gdchaos_tui.app import GdchaosTui
from gdchaos_tui.process import SweepProcess
from gdchaos_tui.screens import setup
from gdchaos_tui.screens.dialogs import ErrorScreen, OutputTakenScreen, QuitScreen, ResumeScreen
from gdchaos_tui.screens.help import HelpScreen
from gdchaos_tui.screens.live import LiveScreen
from gdchaos_tui.screens.results import ResultsScreen
from gdchaos_tui.screens.setup import SetupScreen
from gdchaos_tui.widgets.eta_charts import EtaCharts
from test_tui import synthetic_file, sync, text_of, wait_for


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    finished = synthetic_file(folder / "finished.h5", units_done=4)
    live = synthetic_file(folder / "live.h5", units_done=2)
    truncated = folder / "truncated.h5"
    truncated.write_bytes(finished.read_bytes()[:finished.stat().st_size // 3])
    return {"finished": finished, "live": live, "truncated": truncated}


async def _results(pilot):
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ResultsScreen))


async def _live(pilot):
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, LiveScreen) and pilot.app.screen.state)


async def _error(pilot):
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ErrorScreen))


async def _resume_dialog(pilot):
    await _live(pilot)
    await pilot.press("r")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ResumeScreen))


async def _help(pilot):
    await _results(pilot)
    await pilot.press("question_mark")
    assert isinstance(pilot.app.screen, HelpScreen)


async def _setup_in_a_field(pilot):
    pilot.app.screen.query_one("#ics", Input).focus()
    await pilot.pause()


STATES = {  # name: (file or None for the setup screen, how to get there)
    "setup": (None, _setup_in_a_field),
    "live": ("live", _live),
    "results": ("finished", _results),
    "damaged file": ("truncated", _error),
    "resume dialog": ("live", _resume_dialog),
    "help": ("finished", _help),
}


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
@pytest.mark.parametrize("state", STATES)
@sync
async def test_q_and_ctrl_c_quit_in_every_state(files, tmp_path, monkeypatch, state, key):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(setup, "estimate_seconds", lambda config, **options: 1.0)
    name, reach = STATES[state]
    app = GdchaosTui(files[name] if name else None)
    async with app.run_test(size=(80, 24)) as pilot:
        await reach(pilot)
        if state == "setup" and key == "q":  # a field takes q as a letter; quitting goes through ctrl+c
            await pilot.press("q")
            assert pilot.app.screen.query_one("#ics", Input).value.endswith("q") and app.is_running
            return
        await pilot.press(key)
        await wait_for(pilot, lambda: not app.is_running, timeout=10, what=f"{key} to quit")


@sync
async def test_damaged_file_shows_its_one_line_error(files):
    app = GdchaosTui(files["truncated"])
    async with app.run_test(size=(80, 24)) as pilot:
        await _error(pilot)
        message = app.screen.message
        assert "truncated" in message and "\n" not in message


@sync
async def test_help_opens_with_question_mark_and_f1_and_escape_closes_it(files):
    app = GdchaosTui(files["finished"])
    async with app.run_test(size=(80, 24)) as pilot:
        await _results(pilot)
        results = app.screen
        for key in ("question_mark", "f1"):
            await pilot.press(key)
            assert isinstance(app.screen, HelpScreen)
            text = app.screen.query_one("Markdown").source
            assert "λ_nMLE" in text and "ε-ball" in text and "ctrl+c" in text
            await pilot.press("escape")
            assert app.screen is results


@sync
async def test_command_palette_lists_the_apps_commands(files):
    app = GdchaosTui(files["finished"])
    async with app.run_test(size=(80, 24)) as pilot:
        await _results(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert titles[:5] == ["Open a results file", "New sweep", "Plot finished.h5", "Help", "Quit"]
        app.action_open_file()
        await pilot.pause()
        await pilot.press(*str(files["live"]), "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen), what="the opened file")


@sync
async def test_footer_of_a_finished_run_shows_no_stop_or_resume(files):
    app = GdchaosTui(files["finished"])
    async with app.run_test(size=(80, 24)) as pilot:
        await _results(pilot)
        await pilot.pause(0.3)
        await pilot.press("n")  # a new sweep from the results
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen) and app.screen.config is not None)
        await pilot.pause(0.3)
    app = GdchaosTui(files["live"])
    async with app.run_test(size=(80, 24)) as pilot:
        await _live(pilot)
        live = app.screen
        assert live.check_action("stop", ()) is False and live.check_action("resume", ())
        live.state = dataclasses.replace(live.state, units_done=live.state.units_total)  # as if finished
        assert live.check_action("resume", ()) is False and live.check_action("unfollow", ()) is False
        await pilot.pause(0.3)


# ------------------------------------------------------------------------------ safe start
@sync
async def test_start_on_another_sweeps_file_asks_and_changes_nothing(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(setup, "estimate_seconds", lambda config, **options: 1.0)
    taken = Path(shutil.copy(files["finished"], tmp_path / "taken.h5"))
    before = taken.read_bytes()
    started = []
    monkeypatch.setattr(GdchaosTui, "on_setup_screen_start_requested",
                        lambda self, message: started.append((message.config.output, message.overwrite)))
    app = GdchaosTui()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.query_one("#output", Input).value = "taken.h5"
        await wait_for(pilot, lambda: "different sweep" in text_of(screen, "#cost"), what="the file note")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, OutputTakenScreen) and not started
        await pilot.press("escape")
        assert app.screen is screen and not started
        assert taken.read_bytes() == before and not (tmp_path / "taken.h5.toml").exists()
        await pilot.press("ctrl+s")
        await pilot.press("n")  # a new name
        assert started == [("taken-2.h5", False)]
        assert screen.query_one("#output", Input).value == "taken-2.h5"
        screen.query_one("#output", Input).value = "taken.h5"
        await pilot.pause()
        await pilot.press("ctrl+s", "o")  # overwrite, said explicitly
        assert started[-1] == ("taken.h5", True)
    assert taken.read_bytes() == before


@sync
async def test_a_foreign_file_can_only_be_renamed_around(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(setup, "estimate_seconds", lambda config, **options: 1.0)
    (tmp_path / "notes.h5").write_text("my notes")
    app = GdchaosTui()
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#output", Input).value = "notes.h5"
        await pilot.pause()
        await pilot.press("ctrl+s")
        dialog = app.screen
        assert isinstance(dialog, OutputTakenScreen) and not dialog.can_overwrite
        await pilot.press("o")
        assert app.screen is dialog  # no overwrite on offer
    assert (tmp_path / "notes.h5").read_text() == "my notes"


@sync
async def test_missing_dataset_is_caught_on_the_form_and_folders_are_announced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GDCHAOS_DATA", str(tmp_path / "no-data"))
    monkeypatch.setattr(setup, "estimate_seconds", lambda config, **options: 1.0)
    app = GdchaosTui()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.query_one("#output", Input).value = "new/folder/run.h5"
        await wait_for(pilot, lambda: "creates the folder" in text_of(screen, "#cost"), what="the folder note")
        assert str(tmp_path / "new") in text_of(screen, "#cost")
        screen.query_one("#dataset", Select).value = "mnist"
        await pilot.pause()
        assert "gdchaos data fetch mnist" in text_of(screen, "#problem") and screen.config is None
        await pilot.press("ctrl+s")
        assert app.screen is screen
    assert not (tmp_path / "new").exists()


def test_a_refused_run_does_not_replace_the_files_config(files, tmp_path):
    """The run refuses a file of another sweep: FILE.toml and the file stay as they were."""
    taken = Path(shutil.copy(files["finished"], tmp_path / "taken.h5"))
    toml = tmp_path / "taken.h5.toml"
    toml.write_text("# the config of the sweep in taken.h5\n")
    results, config_text = taken.read_bytes(), toml.read_text()
    process = SweepProcess(from_dict({"etas": "1,3", "ics": 2, "epochs": 20, "tau_epochs": 20},
                                     presets.get("iris-tanh")).validate(), taken)
    process.start()
    deadline = time.monotonic() + 120
    while process.running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.returncode == 2 and "different config" in process.failure()
    assert not process.confirm() and toml.read_text() == config_text and taken.read_bytes() == results
    process.close()


# ------------------------------------------------------------------------------- snapshots
SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_help(snap_compare, files, size):
    async def shown(pilot):
        await _help(pilot)
        await pilot.pause(0.3)

    assert snap_compare(GdchaosTui(files["finished"]), terminal_size=size, run_before=shown)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_results_charts(snap_compare, files, size):
    async def charts(pilot):
        await _results(pilot)
        await wait_for(pilot, lambda: pilot.app.screen.query(EtaCharts) and pilot.app.screen.query_one(EtaCharts).known)
        await pilot.press("g")
        await pilot.pause(0.3)

    assert snap_compare(GdchaosTui(files["finished"]), terminal_size=size, run_before=charts)


@pytest.mark.parametrize("dialog", ["quit", "output-taken"])
@pytest.mark.parametrize("size", SIZES)
def test_snapshot_dialogs_fit(snap_compare, files, size, dialog):
    """Dialogs keep every word and button inside the terminal at 80x24."""
    async def shown(pilot):
        await _results(pilot)
        await pilot.pause(0.3)
        screen = QuitScreen() if dialog == "quit" else OutputTakenScreen(
            "sweep.h5 holds a different sweep.", "sweep-2.h5", True)
        await pilot.app.push_screen(screen)
        await pilot.pause(0.3)

    assert snap_compare(GdchaosTui(files["finished"]), terminal_size=size, run_before=shown)


def test_setup_splits_a_one_unit_grid_into_one_unit_per_learning_rate():
    """Iris plans the whole grid as one unit: the TUI runs one learning rate per unit, so its charts
    fill as each completes; networks whose plan is already per learning rate keep their config."""
    iris = setup.per_eta_units(presets.get("iris-tanh"))
    assert iris.etas_per_unit == 1 and iris.identity() != presets.get("iris-tanh").identity()
    assert setup.per_eta_units(presets.get("mnist-tanh")) == presets.get("mnist-tanh")
    chosen = from_dict({"etas_per_unit": 2}, presets.get("iris-tanh"))
    assert setup.per_eta_units(chosen) == chosen


# ------------------------------------------------------------------- gdchaos run on a terminal
def _tiny(output):
    return from_dict({"etas": "1,10", "ics": 2, "replicas": 2, "epochs": 20, "tau_epochs": 30, "output": output},
                     presets.get("iris-tanh")).validate()


@sync
async def test_run_on_a_terminal_starts_at_once_with_its_own_plan(tmp_path, monkeypatch):
    """`gdchaos run` opens the TUI with --start: the config starts as given (its units as planned, so
    the file is the one --headless makes), without the form being touched."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(setup, "estimate_seconds", lambda config, **options: 1.0)
    started = []
    monkeypatch.setattr(GdchaosTui, "on_setup_screen_start_requested",
                        lambda self, message: started.append(message.config))
    app = GdchaosTui(config=_tiny("run.h5"), start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: started, what="the start")
    assert started[0] == _tiny("run.h5") and started[0].etas_per_unit == 0


@sync
async def test_setup_resumes_a_file_started_with_the_plain_plan(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(setup, "estimate_seconds", lambda config, **options: 1.0)
    done = subprocess.run([sys.executable, "-m", "gdchaos", "run", "--headless", "--etas", "1,10", "--ics", "2",
                           "--replicas", "2", "--epochs", "20", "--tau-epochs", "30", "-o", "plain.h5", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    started = []
    monkeypatch.setattr(GdchaosTui, "on_setup_screen_start_requested",
                        lambda self, message: started.append(message.config))
    app = GdchaosTui(config=_tiny("plain.h5"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert screen.config.etas_per_unit == 1  # the TUI's own plan for a new file
        await wait_for(pilot, lambda: "Start resumes it" in text_of(screen, "#cost"), what="the file note")
        await pilot.press("ctrl+s")
        assert started and started[0].etas_per_unit == 0 and not isinstance(app.screen, OutputTakenScreen)


@sync
async def test_fit_rows_never_wrap_with_long_windows():
    """Epochs >= 1000 made the stats wider than their fixed column: a row wrapped and the last IC
    could not be reached. Every IC keeps one line per row now."""
    from textual.app import App

    from gdchaos_tui.reader import IcFit
    from gdchaos_tui.widgets.fit_curves import FitCurves

    fits = tuple(IcFit(ic, tuple(float(t) for t in range(1501)), 1000, 1500, 0.0123, 0.99, -1) for ic in range(3))

    class One(App):
        def compose(self):
            yield FitCurves()

    app = One()
    async with app.run_test(size=(80, 10)) as pilot:
        curves = app.query_one(FitCurves)
        curves.fits = fits
        await pilot.pause()
        text = curves.render()
        lines = text.plain.splitlines()
        assert len(lines) == 3 and all(len(line) <= 80 for line in lines)
        assert lines[2].startswith("IC 2") and lines[2].rstrip().endswith("t 1000-1500")


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
@sync
async def test_quit_dialog_quits_and_stops_our_run_on_a_second_q_or_ctrl_c(files, monkeypatch, key):
    class Run:  # stands for our child run: still going until stopped
        stopped = False

        def stop(self):
            self.stopped = True

        def wait(self, timeout=None):
            return 130

    run = Run()
    monkeypatch.setattr(GdchaosTui, "running_process", lambda self: None if run.stopped else run)
    app = GdchaosTui(files["finished"])
    async with app.run_test(size=(80, 24)) as pilot:
        await _results(pilot)
        await pilot.press(key)
        assert isinstance(app.screen, QuitScreen) and app.is_running
        await pilot.press(key)
        await wait_for(pilot, lambda: not app.is_running, timeout=10, what="the second key to quit")
    assert run.stopped


class _EndedMeanwhile:
    """A child that still looked running when polled, then ended and was reaped by the waiting worker
    before the signal reached it (the race of a stop pressed as the run finishes)."""

    def poll(self):
        return None

    def send_signal(self, signal_number):
        raise ProcessLookupError(3, "No such process")


def test_stop_as_the_child_ends_is_not_an_error(tmp_path):
    from gdchaos_tui.probe import ProbeProcess

    for process in (SweepProcess(presets.get("iris-tanh"), tmp_path / "run.h5"),
                    ProbeProcess(presets.get("iris-tanh"), tmp_path / "probe.h5", method="tangent", ics=1, epochs=2)):
        process._child = _EndedMeanwhile()
        process.stop()  # nothing to stop: no exception reaches the app
