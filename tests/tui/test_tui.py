"""gdchaos-tui driven by Textual's Pilot: setup, live (own and foreign runs), results, bad input, snapshots.

Snapshots (pytest-textual-snapshot, tests/tui/__snapshots__/test_tui/) use synthetic results files written
through gdchaos.store.Writer, so they hold no timings; refresh them with ``pytest --snapshot-update``.
"""
from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from textual import events
from textual.css.query import NoMatches
from textual.widgets import Button, DataTable, Input, Label, Static

from gdchaos import data, presets, store
from gdchaos.config import from_dict
from gdchaos.engine.units import Unit
from gdchaos.nn import MLP
from gdchaos.runner import analyse_into
from gdchaos.store import Writer
from gdchaos_tui.app import GdchaosTui
from gdchaos_tui.reader import RunReader
from gdchaos_tui.screens import setup
from gdchaos_tui.screens.dialogs import ErrorScreen, QuitScreen, ResumeScreen
from gdchaos_tui.screens.live import LiveScreen
from gdchaos_tui.screens.results import ResultsScreen
from gdchaos_tui.screens.setup import SetupScreen
from gdchaos_tui.timing import EtaClock
from gdchaos_tui.widgets.eta_charts import EtaCharts
from gdchaos_tui.widgets.fit_curves import FitCurves
from gdchaos_tui.widgets.spark import LabelledSparkline

SIZES = [(80, 24), (120, 40)]
# a real Iris run that lasts a few seconds, so there is time to watch, stop and resume: each unit (one
# IC, both etas) trains 2 balls of 61 networks for 3,000 epochs, about 1.5 s of kernel time on one
# core (the whole-network kernel trains many epochs per call: short runs end before a key press)
LIVE_RUN = dict(etas="1,10", ics=2, replicas=60, epochs=3000, target=1.0, tau_epochs=3000, ics_per_unit=1)


def sync(test):
    """Run an async test in its own event loop (no pytest-asyncio needed)."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))
    return run


async def wait_for(pilot, condition, timeout: float = 60.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds (a widget it queries that is not mounted yet: not yet)."""
    deadline = time.monotonic() + timeout
    while not _holds(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


def _holds(condition) -> bool:
    try:
        return bool(condition())
    except NoMatches:
        return False


async def key_latency(pilot, key: str, answered) -> float:
    """Seconds from a key event to its visible effect (Pilot's own waits would count idle time)."""
    started = time.perf_counter()
    pilot.app.post_message(events.Key(key, None))
    while not answered():
        await asyncio.sleep(0.002)
    return time.perf_counter() - started


async def type_into(pilot, selector: str, text: str) -> None:
    """Clear an input and type ``text`` as a user would."""
    widget = pilot.app.screen.query_one(selector, Input)
    widget.focus()
    widget.value = ""
    await pilot.press(*text)
    await pilot.pause()


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


# ------------------------------------------------------------------ synthetic results files
def synthetic_file(path: Path, *, units_done: int, diverged: tuple[int, ...] = ()) -> Path:
    """A results file with made-up curves: ln d grows at a rate set by eta and saturates. At the eta
    indices ``diverged`` every network's loss overflows at epoch 1 and the distances freeze at 1.5e301
    (what the issue's eta = 1e307 sweep recorded); at eta index 2, replica 1 of IC 1 diverges at epoch 30."""
    config = from_dict(dict(etas=[0.5, 2.0, 8.0, 16.0], ics=3, replicas=2, epochs=40, tau_epochs=60,
                            etas_per_unit=1, ics_per_unit=3, output=str(path)), presets.get("iris-tanh")).validate()
    units = [Unit(e, e, e + 1, 0, 3) for e in range(4)]
    t = np.arange(41)
    model = MLP((4, 10, 3))
    layout = [{"name": t.name, "shape": list(t.shape), "offset": t.offset} for t in model.layout()]
    fingerprint = data.fingerprint(*data.load("iris"))  # resuming checks the data are the run's
    with Writer.create_or_resume(path, config, units, n_params=model.n_params, layout=layout,
                                 fingerprint=fingerprint) as writer:
        for unit in units[:units_done + 1]:
            e = unit.eta_start
            rate = (-0.02, 0.15, 0.35, 0.6)[e]
            ic = np.arange(3)[:, None, None]
            replica = np.arange(2)[None, :, None]
            log_d = np.minimum(-16 + (rate + 0.02 * ic) * t + 0.1 * np.sin(t + replica), -1.0 - 0.2 * ic)
            loss = 1.1 * np.exp(-(0.05 + 0.02 * e) * t) + 0.05 * ic[:, :, 0]
            written = 41 if unit.index < units_done else 20  # the last one is in flight, epoch 19
            arrays = {"distances": np.exp(log_d)[None], "loss": loss[None],
                      "train_accuracy": np.clip(1 - loss, 0, 1)[None], "test_accuracy": np.clip(1 - loss, 0, 1)[None],
                      "reached_epoch": np.array([[10 + 5 * e, 12 + 5 * e, -1]], dtype=np.int32),
                      "diverged_epoch": np.full((1, 3, 3), -1, dtype=np.int32)}
            if e in diverged:
                arrays["distances"][..., 1:] = 1.5e301
                arrays["loss"][..., 1:] = np.inf
                arrays["diverged_epoch"][:] = 1
                arrays["reached_epoch"][:] = -1
            elif e == 2 and diverged:
                arrays["diverged_epoch"][0, 1, 2] = 30
            for name in ("distances", "loss", "train_accuracy", "test_accuracy"):
                arrays[name][..., written:] = np.nan
            writer.write_unit(unit, arrays, written, done=unit.index < units_done)
        if units_done == len(units):
            analyse_into(writer, config)
    return path


@pytest.fixture(scope="module")
def finished_file(tmp_path_factory) -> Path:
    return synthetic_file(tmp_path_factory.mktemp("finished") / "sweep.h5", units_done=4)


@pytest.fixture(scope="module")
def live_file(tmp_path_factory) -> Path:
    return synthetic_file(tmp_path_factory.mktemp("live") / "sweep.h5", units_done=2)


@pytest.fixture(scope="module")
def diverged_file(tmp_path_factory) -> Path:
    return synthetic_file(tmp_path_factory.mktemp("diverged") / "sweep.h5", units_done=4, diverged=(3,))


def test_eta_clock_uses_finished_units_and_counts_down_between_them():
    now = [100.0]
    clock = EtaClock(lambda: now[0])
    assert clock.update(0.2, 0.2) is None  # attached to a run already 20% done
    now[0] += 1
    assert clock.update(0.25, 0.2) is None  # first change seen: the rate of epochs starts here
    now[0] += 10
    assert clock.update(0.35, 0.2) == pytest.approx(65.0)  # 0.1 per 10 s, 0.65 left
    now[0] += 9
    assert clock.update(0.4, 0.4) == pytest.approx(60.0)  # a unit finished: 0.2 in 20 s, 0.6 left
    now[0] += 10
    assert clock.update(0.4, 0.4) == pytest.approx(50.0)  # stalled (references training): counts down
    now[0] += 10
    assert clock.update(0.6, 0.6) == pytest.approx(40.0)  # two completions: 0.2 per 20 s, 0.4 left
    clock.reset()
    assert clock.update(0.7, 0.6) is None
    assert clock.update(1.0, 1.0) == 0.0


# ------------------------------------------------------------------------------- snapshots
@pytest.mark.parametrize("size", SIZES)
def test_snapshot_setup(snap_compare, monkeypatch, tmp_path, size):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(setup, "estimate_seconds", lambda config, **options: 754.0)

    async def estimated(pilot):
        await wait_for(pilot, lambda: "≈" in text_of(pilot.app.screen, "#cost"), what="the estimate")
        etas = pilot.app.screen.query_one("#etas", Input)
        assert len(etas.value) < etas.content_size.width, "the paper's 16 learning rates are shown whole"
        cost = pilot.app.screen.query_one("#cost", Static)
        lines = text_of(pilot.app.screen, "#cost").splitlines()
        assert cost.content_size.height == len(lines) and max(map(len, lines)) <= cost.content_size.width  # no wrap

    assert snap_compare(GdchaosTui(), terminal_size=size, run_before=estimated)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_live(snap_compare, live_file, size):
    async def read(pilot):
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, LiveScreen), what="the live screen")
        live = pilot.app.screen
        await wait_for(pilot, lambda: live.state and live.state.focus == 2 and live.query_one(EtaCharts).known,
                       what="a read of the eta in flight")

    assert snap_compare(GdchaosTui(live_file), terminal_size=size, run_before=read)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_results(snap_compare, finished_file, size):
    async def fitted(pilot):
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ResultsScreen)
                       and pilot.app.screen.query(FitCurves) and pilot.app.screen.query_one(FitCurves).fits,
                       what="the fits")
        await pilot.press("down", "down")
        await wait_for(pilot, lambda: pilot.app.screen.query_one(FitCurves).fits[0].lyapunov > 0.3,
                       what="the fits of eta 8")

    assert snap_compare(GdchaosTui(finished_file), terminal_size=size, run_before=fitted)


# --------------------------------------------------------------------------- opening files
@sync
async def test_finished_file_opens_results_with_stored_fits(finished_file):
    with store.open(finished_file) as run:
        stored = run.fits()
        lam = run.summary()["lambda_mean"]
    app = GdchaosTui(finished_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.query(FitCurves)
                       and app.screen.query_one(FitCurves).fits)
        table = app.screen.query_one("#summary", DataTable)
        assert table.row_count == 4
        assert [fit.start for fit in app.screen.query_one(FitCurves).fits] == list(stored["start"][0].astype(int))
        assert table.get_row_at(2)[1].startswith(f"{lam[2]:.3g} ±")


@sync
async def test_file_without_summary_and_fits_opens_results_with_its_own_fits(finished_file, tmp_path):
    with store.open(finished_file) as run:
        stored = run.fits()
        lam = run.summary()["lambda_mean"]
    path = Path(shutil.copy(finished_file, tmp_path / "old.h5"))
    with h5py.File(path, "r+") as handle:  # as written by a gdchaos that stored no analysis
        del handle["summary"], handle["fit"]
    app = GdchaosTui(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.query(FitCurves)
                       and app.screen.query_one(FitCurves).fits)
        table = app.screen.query_one("#summary", DataTable)
        assert [fit.start for fit in app.screen.query_one(FitCurves).fits] == list(stored["start"][0].astype(int))
        assert table.get_row_at(2)[1].startswith(f"{lam[2]:.3g} ±")


@sync
async def test_diverged_learning_rates_show_as_diverged(diverged_file):
    """eta 16: every network diverged at epoch 1 (finite, frozen distances); eta 8: one ball of three."""
    app = GdchaosTui(diverged_file)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.query(FitCurves)
                       and app.screen.query_one(FitCurves).fits)
        table = app.screen.query_one("#summary", DataTable)
        assert str(table.get_row_at(3)[1]) == "diverged" and table.get_row_at(3)[-1] == "3"
        assert table.get_row_at(2)[-1] == "1" and table.get_row_at(2)[1] != "diverged"
        assert [row.all_diverged for row in app.screen.state.rows] == [False, False, False, True]
        assert "every initial condition diverged at η = 16" in text_of(app.screen, "#note")
        await pilot.press("down", "down")
        await wait_for(pilot, lambda: app.screen.query_one(FitCurves).fits[1].diverged_at == 30,
                       what="the fits of eta 8")
        fits = app.screen.query_one(FitCurves).fits
        assert len(fits[1].log_d) == 30 and fits[1].start == -1 and np.isnan(fits[1].lyapunov)
        assert fits[0].diverged_at == fits[2].diverged_at == -1 and fits[0].lyapunov > 0.3
        await pilot.press("down")
        await wait_for(pilot, lambda: app.screen.query_one(FitCurves).fits[0].diverged_at == 1,
                       what="the fits of eta 16")
        fits = app.screen.query_one(FitCurves).fits
        assert all(fit.diverged_at == 1 and len(fit.log_d) == 1 and fit.start == -1 for fit in fits)
        assert "diverged at epoch 1" in str(app.screen.query_one(FitCurves).render())


@sync
async def test_live_table_shows_a_complete_diverged_learning_rate(tmp_path):
    path = synthetic_file(tmp_path / "sweep.h5", units_done=2, diverged=(0,))
    app = GdchaosTui(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.state
                       and app.screen.query_one("#etas", DataTable).row_count == 4, what="the table")
        table = app.screen.query_one("#etas", DataTable)
        assert table.get_row_at(0)[3] == "diverged" and table.get_row_at(1)[3] != "diverged"
        assert app.screen.state.rows[0].n_diverged == 3 and not app.screen.state.rows[2].all_diverged


@sync
async def test_partial_file_opens_live_with_own_fits_of_complete_etas(live_file):
    app = GdchaosTui(live_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.state)
        live = app.screen
        assert live.process is None  # foreign: nothing to stop, only to stop following
        assert [row.status for row in live.state.rows] == ["done", "done", "running", "pending"]
        assert np.isfinite(live.state.rows[1].lambda_mean) and np.isnan(live.state.rows[2].lambda_mean)
        assert live.check_action("stop", ()) is False and live.check_action("unfollow", ())
        await pilot.press("s")
        assert not live.following and "not following" in text_of(live, "#status")
        await pilot.press("f")
        assert live.following
        # the curves follow the eta in flight: epochs 0..19 of its first IC so far
        await wait_for(pilot, lambda: live.state.focus == 2)
        assert live.state.focus_ic == 0 and len(live.state.log_d) == 20
        assert live.state.rows[2].progress == pytest.approx(20 * 3 / (41 * 3 + 20))  # ball epochs of 3 networks
        assert "IC 0 at η=8" in live.query_one("#curves").border_title
        await pilot.press("up")  # the user picks a finished one: its last IC, all epochs
        await wait_for(pilot, lambda: live.state.focus == 1)
        assert len(live.state.log_d) == 41 and live.check_action("follow_work", ())
        await pilot.press("c")
        await wait_for(pilot, lambda: live.state.focus == 2)


@sync
async def test_live_view_draws_the_tangent_curve_beside_d1(tmp_path):
    from gdchaos import runner
    from gdchaos_tui.widgets.tangent_chart import TangentChart

    config = from_dict({"etas": [0.5, 10.0], "ics": 2, "replicas": 2, "epochs": 20, "tau_epochs": 30,
                        "ics_per_unit": 1, "etas_per_unit": 1, "tangent": True,
                        "output": str(tmp_path / "tangent.h5")}, presets.get("iris-tanh")).validate()
    path = runner.run(config).path
    with h5py.File(path, "r+") as handle:  # the last unit back in flight: the file opens live
        handle["unit_done"][-1] = 0
    app = GdchaosTui(path)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.state
                       and any(chart.curves[1] for chart in app.screen.query(TangentChart)), what="the tangent curve")
        state, chart = app.screen.state, app.screen.query_one(TangentChart)
        assert chart.display and chart.curves == (state.log_d1, state.log_tangent)
        assert len(state.log_tangent) == 21 and len(state.log_d1) == 21
        # the eps -> 0 limit of the first replica's distance: equal while the ball is small
        np.testing.assert_allclose(state.log_tangent[:3], state.log_d1[:3], rtol=1e-4)
        # lambda_tangent beside lambda_nMLE against eta: the complete learning rate has both
        with store.open(path) as run:
            expected = run.analysis().summary["lambda_tangent_mean"][0]
        await wait_for(pilot, lambda: any(charts.points for charts in app.screen.query(EtaCharts)),
                       what="the charts")
        points = app.screen.query_one(EtaCharts).points
        assert points[0].lam_tangent == expected and np.isfinite(points[0].lam) and np.isnan(points[1].lam_tangent)


@sync
async def test_resume_here_continues_a_stopped_file(live_file, tmp_path):
    """r on a file nobody writes starts the run here; the app keeps reading while it resumes."""
    path = tmp_path / "stopped.h5"
    shutil.copy(live_file, path)
    app = GdchaosTui(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.state)
        live = app.screen
        await pilot.press("r")  # a run started elsewhere: its config is shown first
        await wait_for(pilot, lambda: isinstance(app.screen, ResumeScreen))
        assert "Resume this run? iris, tanh 10" in str(app.screen.query_one(Label).render())
        assert live.process is None
        await pilot.press("escape")
        assert app.screen is live and live.process is None
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ResumeScreen))
        await pilot.press("y")
        assert live.process is not None and live.process.running and app.running_process() is live.process
        await wait_for(pilot, lambda: not live.process.running and live.state.complete, what="the resumed run")
        assert live.process.returncode == 0, live.process.failure()
        assert [row.status for row in live.state.rows] == ["done"] * 4


@pytest.mark.parametrize("content, message", [
    (b"this is not HDF5 at all" * 20, "not a readable HDF5 file"),
    (None, "not a gdchaos results file"),
    ("gdchaos-sweep", "its config, unit table or layout cannot be read"),
], ids=["garbage", "other-hdf5", "claims-format"])
@sync
async def test_bad_files_show_an_error_not_a_traceback(tmp_path, content, message):
    path = tmp_path / "bad.h5"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        with h5py.File(path, "w") as handle:
            handle["x"] = np.arange(3)
            if content:
                handle.attrs["format"] = content  # claims the format, lacks everything else
    app = GdchaosTui(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen))
        assert message in app.screen.message
        await pilot.press("n")  # a new sweep instead
        assert isinstance(app.screen, SetupScreen)


@sync
async def test_missing_file_shows_an_error(tmp_path):
    app = GdchaosTui(tmp_path / "nothing.h5")
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen))
        assert "no such file" in app.screen.message


# ------------------------------------------------------------------------------ setup form
BAD_FIELDS = [
    ("#etas", "abc", "etas:"),
    ("#etas", "log:0:1:5", "etas: log spacing"),
    ("#hidden", "0", "model.hidden:"),
    ("#ics", "two", "ics: must be an integer"),
    ("#epochs", "1", "epochs: must be an integer in [2, 2147483646]"),
    ("#target", "1.5", "target:"),
    ("#tau_epochs", "100", "tau_epochs: must be an integer in [201, 2147483646]"),
    ("#output", "", "output:"),
]


@sync
async def test_invalid_fields_cannot_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(setup, "estimate_seconds", lambda config, **options: 1.0)
    app = GdchaosTui()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        start = screen.query_one("#start", Button)
        assert not start.disabled
        for field, text, message in BAD_FIELDS:
            good = screen.query_one(field, Input).value
            if field == "#etas":
                await type_into(pilot, field, text)
            else:  # typing is slow in Pilot; a value set in code goes through the same Changed event
                screen.query_one(field, Input).value = text
                await pilot.pause()
            assert message in text_of(screen, "#problem")
            assert start.disabled and screen.config is None
            assert screen.query_one(field, Input).has_class("bad")
            if field == "#etas":  # every way to start is refused
                await pilot.press("enter", "ctrl+s")
                await pilot.click("#start")
                assert app.screen is screen and app.running_process() is None
            screen.query_one(field, Input).value = good
            await pilot.pause()
            assert not start.disabled and text_of(screen, "#problem") == ""


@sync
async def test_preset_prefills_the_form(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(setup, "estimate_seconds", lambda config, **options: 1.0)
    app = GdchaosTui()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.query_one("#preset").value = "mnist-deep"
        await pilot.pause()
        assert screen.query_one("#hidden", Input).value == "32,32"
        assert screen.query_one("#output", Input).value == "mnist-deep.h5"
        assert screen.config == presets.get("mnist-deep")
        screen.query_one("#preset").value = "mnist-cnn"
        await pilot.pause()
        assert screen.query_one("#hidden", Input).disabled and screen.config == presets.get("mnist-cnn")


# --------------------------------------------------------------------------- real runs
@sync
async def test_start_stop_resume_then_results(tmp_path, monkeypatch):
    """Setup -> start an Iris run -> curves fill -> stop (SIGTERM) -> resume -> results."""
    monkeypatch.chdir(tmp_path)
    base = from_dict({"ics_per_unit": LIVE_RUN["ics_per_unit"]}, presets.get("iris-tanh"))
    app = GdchaosTui(config=base)
    async with app.run_test(size=(100, 30)) as pilot:
        for key in ("etas", "ics", "replicas", "epochs", "target", "tau_epochs"):
            app.screen.query_one(f"#{key}", Input).value = str(LIVE_RUN[key])
        await type_into(pilot, "#output", "run.h5")  # typed: Pilot's typing is slow while threads work
        assert app.screen.config is not None, text_of(app.screen, "#problem")
        await pilot.click("#start")
        live = app.screen
        assert isinstance(live, LiveScreen) and live.process.running
        await wait_for(pilot, lambda: (tmp_path / "run.h5.toml").exists(), what="the config, once the run took the file")
        if hasattr(os, "getpriority"):  # the run yields the CPU to the app
            assert os.getpriority(os.PRIO_PROCESS, live.process.pid) > os.getpriority(os.PRIO_PROCESS, 0)

        spark = live.query_one("#log-d", LabelledSparkline)
        await wait_for(pilot, lambda: spark.data, what="ln d(t) data")
        assert "min" in str(spark.query_one("Label").render())
        table = live.query_one("#etas", DataTable)
        latencies = [await key_latency(pilot, key, lambda row=row: table.cursor_row == row)
                     for key, row in (("down", 1), ("up", 0), ("down", 1))]
        assert sorted(latencies)[1] < 0.1, latencies  # the sweep computes in its own process
        await pilot.press("q")  # our run is going: quitting asks first
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")
        assert app.screen is live and live.process.running
        await pilot.press("s")
        await wait_for(pilot, lambda: not live.process.running, what="the run to stop")
        assert live.process.returncode in (130, -15)
        await wait_for(pilot, lambda: "stopped" in text_of(live, "#status"))
        state = RunReader(tmp_path / "run.h5").read()  # the app's own reads open it the same way
        assert state.units_done < state.units_total  # stopped before the end

        await pilot.press("r")
        assert live.process.running
        await wait_for(pilot, lambda: not live.process.running and live.state.complete, what="the resumed run")
        assert live.process.returncode == 0
        await wait_for(pilot, lambda: live.query_one(EtaCharts).known == 2)
        assert [row.status for row in live.state.rows] == ["done", "done"]

        await pilot.press("v")
        assert isinstance(app.screen, ResultsScreen)
        await wait_for(pilot, lambda: len(app.screen.query_one(FitCurves).fits) == 2)
        await pilot.press("escape")
        assert app.screen is live


@sync
async def test_attach_follows_a_run_started_elsewhere(tmp_path):
    config = from_dict({**LIVE_RUN, "ics_per_unit": 2, "output": str(tmp_path / "foreign.h5")},
                       presets.get("iris-tanh")).validate()  # one unit
    (tmp_path / "foreign.toml").write_text(config.to_toml())
    child = subprocess.Popen([sys.executable, "-m", "gdchaos", "run", "--headless", "--config",
                              str(tmp_path / "foreign.toml"), "--quiet"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:  # attach once the writer has created the file
            try:
                store.open(config.output).close()
                break
            except Exception:
                assert time.monotonic() < deadline and child.poll() is None
                time.sleep(0.1)
        app = GdchaosTui(config.output)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
            live = app.screen
            assert live.process is None and live.following
            await wait_for(pilot, lambda: live.state.complete and child.poll() is not None, what="the foreign run")
            await wait_for(pilot, lambda: "finished" in text_of(live, "#status"))
            assert [row.status for row in live.state.rows] == ["done", "done"]
            assert live.query_one("#log-d", LabelledSparkline).data
        assert child.wait(30) == 0
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait(30)
