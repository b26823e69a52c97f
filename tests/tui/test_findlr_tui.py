"""gdchaos-tui: find the learning rate from the setup screen (a real, small find-lr child), fill the η
field with the sweep centred on the onset, say plainly when there is none, cancel, one-line errors."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Button, Input

from gdchaos import presets
from gdchaos.findlr import FindLRResult, Row, Suggestions, centred_etas, centred_grid, stored_result
from gdchaos.grid import parse_etas
from gdchaos_tui.app import GdchaosTui
from gdchaos_tui.probe import ProbeProcess
from gdchaos_tui.screens import setup
from gdchaos_tui.screens.findlr import FindLRScreen, probe_output
from gdchaos_tui.screens.setup import SetupScreen
from test_tui import sync, text_of, type_into, wait_for

PROBE_SECONDS = 600.0  # a fresh child loads (or, on a cold cache, compiles) the kernels first
SMALL = {"#ics": "3", "#epochs": "30"}  # a probe of a few seconds on Iris


def tiny(tmp_path: Path, **analysis):
    """iris-tanh with its results file in ``tmp_path`` (and ``analysis`` settings)."""
    base = presets.get("iris-tanh")
    return replace(base, output=str(tmp_path / "sweep.h5"), analysis={**base.analysis, **analysis})


async def open_probe(pilot, options: dict[str, str]) -> FindLRScreen:
    """ctrl+l on the setup screen, then the probe's options typed in."""
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SetupScreen), what="the setup screen")
    await pilot.press("ctrl+l")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, FindLRScreen), what="the find-lr screen")
    for selector, text in options.items():
        await type_into(pilot, selector, text)
    return pilot.app.screen


@pytest.fixture(autouse=True)
def no_timing(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(setup, "estimate_seconds", lambda config, **options: 1.0)


@sync
async def test_find_lr_fills_the_eta_field_with_a_sweep_centred_on_the_onset(tmp_path):
    app = GdchaosTui(config=tiny(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        probe = await open_probe(pilot, {**SMALL, "#count": "5"})
        await pilot.click("#find")
        await wait_for(pilot, lambda: probe.result is not None or "✗" in text_of(probe, "#status"),
                       timeout=PROBE_SECONDS, what="the probe")
        result = probe.result
        assert result is not None, text_of(probe, "#status")
        assert result.suggestions.onset is not None, result.notes
        assert result.ics == 3 and result.epochs == 30 and result.method == "tangent"
        assert stored_result(tmp_path / "sweep-find-lr.h5").to_dict() == result.to_dict()
        assert f"onset        {result.suggestions.onset:.4g}" in text_of(probe, "#found")
        assert not probe.query_one("#fill", Button).disabled
        await pilot.click("#fill")
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen), what="back to the setup")
        field = app.screen.query_one("#etas", Input).value
        assert field == centred_grid(result, 5)
        assert parse_etas(field) == centred_etas(result, 5)  # what `run --etas auto:5 --find-lr FILE` sweeps
        await pilot.pause()
        assert app.screen.config is not None and app.screen.config.etas == centred_etas(result, 5)


@sync
async def test_no_onset_is_said_and_the_field_is_left_alone(tmp_path):
    app = GdchaosTui(config=tiny(tmp_path, lambda_min=100.0))  # no exponent reaches 100: nothing is chaotic
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen), what="the setup screen")
        before = app.screen.query_one("#etas", Input).value
        probe = await open_probe(pilot, SMALL)
        await pilot.press("enter")
        await wait_for(pilot, lambda: probe.result is not None or "✗" in text_of(probe, "#status"),
                       timeout=PROBE_SECONDS, what="the probe")
        assert probe.result is not None and probe.result.suggestions.onset is None
        assert text_of(probe, "#status").startswith("no onset found")
        assert "note: no onset found" in text_of(probe, "#found")
        assert probe.query_one("#fill", Button).disabled
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen), what="back to the setup")
        assert app.screen.query_one("#etas", Input).value == before


@sync
async def test_a_running_probe_is_cancelled_and_bad_options_are_one_line(tmp_path):
    app = GdchaosTui(config=tiny(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        probe = await open_probe(pilot, {"#ics": "0"})
        await pilot.click("#find")
        assert text_of(probe, "#status") == "✗ ics: must be an integer in [1, 100000]; got 0"
        assert probe.process is None
        await type_into(pilot, "#ics", "8")
        await type_into(pilot, "#epochs", "1000000")  # hours: it must be stopped
        await pilot.click("#find")
        await wait_for(pilot, lambda: probe.process is not None and probe.process.running, what="the child")
        await pilot.press("escape")
        await wait_for(pilot, lambda: "cancelled" in text_of(probe, "#status"), timeout=60, what="the stop")
        assert not probe.process.running and probe.result is None
        assert isinstance(app.screen, FindLRScreen)  # escape again closes it
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen), what="back to the setup")


def test_a_failing_probe_is_one_line(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_text("not HDF5")
    process = ProbeProcess(tiny(tmp_path), junk, method="tangent", ics=2, epochs=10)
    process.start()
    lines = list(process.lines())
    assert process.wait() == 2
    failure = process.failure()
    assert failure is not None and "junk.h5" in failure and "\n" not in failure
    assert not any("Traceback" in line for line in lines)


def test_probe_output_never_replaces_a_probe(tmp_path):
    assert probe_output(str(tmp_path / "sweep.h5")) == tmp_path / "sweep-find-lr.h5"
    (tmp_path / "sweep-find-lr.h5").touch()
    assert probe_output(str(tmp_path / "sweep.h5")) == tmp_path / "sweep-find-lr-2.h5"


def synthetic_result() -> FindLRResult:
    """A made-up probe (no timings) for the snapshot: a crossing refined twice, divergence not found."""
    rhos = [(0.05, 0, 0), (0.1, 2, 0), (0.2, 5, 0), (0.4, 7, 0), (0.141, 7, 1), (0.168, 13, 2)]
    rows = []
    for eta, chaotic, round_ in rhos:
        ics = 8 * (round_ + 1)
        rows.append(Row(eta=eta, ics=ics, chaotic=chaotic, rho=100 * chaotic / ics, rho_low=10.0, rho_high=60.0,
                        lambda_mean=0.01 * chaotic, lambda_std=0.01, diverged=0.0, round=round_))
    return FindLRResult(method="tangent", target_rho=0.5, ics=8, epochs=150, rows=rows,
                        suggestions=Suggestions(onset=0.168, first_chaos=0.1, eos_init=0.14, divergence=None),
                        bracket=(0.05, 0.4), sharpness_init=[14.0] * 8, seconds=3.0, path="sweep-find-lr.h5",
                        notes=["no learning rate up to 0.4 (eos_init x 2^8) diverged every IC within 150 epochs: "
                               "divergence not found"])


@pytest.mark.parametrize("size", [(80, 24)])
def test_snapshot_find_lr_result(snap_compare, tmp_path, size):
    async def shown(pilot):
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SetupScreen), what="the setup screen")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, FindLRScreen), what="the find-lr screen")
        pilot.app.screen.show(synthetic_result())
        await pilot.pause()

    assert snap_compare(GdchaosTui(config=tiny(Path("."))), terminal_size=size, run_before=shown)



@sync
async def test_the_command_palette_offers_it_on_the_setup_screen(tmp_path):
    app = GdchaosTui(config=tiny(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen), what="the setup screen")
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert titles[:3] == ["Open a results file", "New sweep", "Find the learning rate"]
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"find the learning", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FindLRScreen), what="the find-lr screen")
        assert app.screen.config.model.hidden == (10,) and app.screen.process is None  # nothing runs before Find
