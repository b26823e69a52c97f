"""What the command line prints reads well anywhere: pipes and logs get plain aligned text with every
number whole, runs say what to do next, the cubic map says how much of its table it shows."""
import json
import math
import subprocess
import sys

import numpy as np
from rich.console import Console

from gdchaos import presets
from gdchaos.cli.progress import tau_text
from gdchaos.cli.table import TextTable, print_table
from gdchaos.engine import estimate
from gdchaos.engine.sweep import UnitProgress

TINY = ["--etas", "1,10", "--ics", "2", "--replicas", "2", "--epochs", "20", "--tau-epochs", "30"]


def gdchaos(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "gdchaos", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=env)


def test_table_is_plain_and_uncut_where_rich_cannot_fit():
    table = TextTable(["eta", "lambda_nMLE", "regime"], [["0.0005", "-0.000123456", "regular"]], align="rrl")
    narrow = Console(width=20, force_terminal=True, record=True)
    print_table(table, narrow)
    lines = narrow.export_text().splitlines()
    assert lines == ["   eta   lambda_nMLE  regime", "0.0005  -0.000123456  regular"]
    wide = Console(width=120, force_terminal=True, record=True)
    print_table(table, wide)
    text = wide.export_text()
    assert "┃" in text and "-0.000123456" in text  # Rich's borders: it fits
    pipe = Console(width=20, force_terminal=False, record=True)
    print_table(table, pipe)
    text = pipe.export_text()
    assert "┃" not in text and "lambda_nMLE" in text


def test_run_and_analyze_in_a_pipe_print_whole_numbers_and_the_next_commands(tmp_path):
    run = gdchaos("run", "--headless", *TINY, "-o", "r.h5", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "gdchaos-tui r.h5" in run.stdout and "gdchaos plot r.h5" in run.stdout
    printed = gdchaos("analyze", "r.h5", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert "…" not in printed.stdout and "lambda_nMLE" in printed.stdout
    rows = json.loads(gdchaos("analyze", "r.h5", "--json", cwd=tmp_path).stdout)
    lines = printed.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("eta")))
    for row, line in zip(rows, lines[header + 1:]):
        cells = line.split()
        assert float(cells[0]) == row["eta"] and math.isclose(float(cells[1]), row["lambda_mean"], rel_tol=5e-3)


def test_cubic_says_how_many_rows_it_shows_and_prints_minus_infinity():
    shown = gdchaos("cubic", "--etas", "0.01:2:50")
    assert shown.returncode == 0 and "11 of 50 learning rates" in shown.stdout
    superstable = gdchaos("cubic", "--etas", "0.5,1")  # f'(w*) = 1 - 2 eta = 0 at eta = 0.5: ln 0
    line = next(line for line in superstable.stdout.splitlines() if line.startswith("0.5"))
    assert line.split()[1] == "-inf" and "of" not in superstable.stdout.splitlines()[0]


def test_tau_label_counts_references_that_reached_the_target():
    config = presets.get("iris-tanh")
    reached = np.array([[[5, -1, -1, 12]]])
    done = UnitProgress("done", 1000, {"reached_epoch": reached}, 0)
    assert tau_text(done, config) == f"tau: 2/4 reached {config.target:g} within {config.tau_epochs} epochs"
    going = UnitProgress("tau", 300, {"reached_epoch": reached}, 2)
    assert tau_text(going, config).startswith("tau: 2/4 reached") and "2 training" in tau_text(going, config)


def test_presets_answer_from_stored_calibrations(tmp_path, monkeypatch):
    monkeypatch.setenv("GDCHAOS_CACHE", str(tmp_path))
    env = {"GDCHAOS_CACHE": str(tmp_path), "GDCHAOS_BACKGROUND_TIMING": "0", "PATH": "/usr/bin:/bin"}
    first = gdchaos("presets", env=env)
    assert first.returncode == 0 and "measuring…" in first.stdout and "not timed" in first.stdout
    monkeypatch.setattr(estimate, "_timed_tiny_runs", lambda dataset, data_dir: 0.5)
    for name in presets.names():  # as the background timing would have stored them
        estimate.store_calibration(estimate.calibration_key(presets.get(name)), (1e-7, 1e-7))
        estimate.start_seconds(presets.get(name).dataset)
    expected = estimate.estimate_seconds(presets.get("iris-tanh"), measure=False)
    second = gdchaos("presets", env=env)
    assert second.returncode == 0 and "measuring" not in second.stdout and "not timed" not in second.stdout
    from gdchaos.text import duration
    iris = next(line for line in second.stdout.splitlines() if line.startswith("iris-tanh"))
    assert iris.split()[-1] == duration(expected)


def test_run_without_headless_and_without_a_terminal_runs_headless(tmp_path):
    run = gdchaos("run", *TINY, "-o", "plain.h5", cwd=tmp_path)  # stdin and stdout are pipes here
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "plain.h5").exists() and "lambda_nMLE" in run.stdout


def test_live_view_only_on_a_terminal_and_when_units_run_here(monkeypatch):
    import argparse

    from gdchaos.cli.run import wants_live_view

    class Terminal:
        @staticmethod
        def isatty():
            return True

    monkeypatch.setattr(sys, "stdin", Terminal)
    monkeypatch.setattr(sys, "stdout", Terminal)
    plain = dict(headless=False, quiet=False, workers=None, scheduler=None, cluster=None, shard=None)
    assert wants_live_view(argparse.Namespace(**plain))
    for change in ({"headless": True}, {"quiet": True}, {"workers": 2}, {"shard": "1/2"}):
        assert not wants_live_view(argparse.Namespace(**{**plain, **change}))


def test_the_console_script_exits_quickly_with_its_code_its_output_and_the_exit_handlers():
    """exit_quickly skips only the interpreter's teardown: the code, everything printed (also by exit
    handlers, after the flush) and the handlers themselves survive it."""
    code = ("import atexit, numba; from gdchaos.cli import exit_quickly; "
            "atexit.register(lambda: print('handler ran')); print('x' * 100000, end='|'); exit_quickly(3)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and done.stdout == "x" * 100000 + "|handler ran\n"
    without_numba = subprocess.run([sys.executable, "-c", "import sys; from gdchaos.cli import exit_quickly; "
                                    "print('numba' in sys.modules, end=''); exit_quickly(4)"],
                                   capture_output=True, text=True, timeout=120)
    assert (without_numba.returncode, without_numba.stdout) == (4, "False")  # a plain exit, output kept
    missing = gdchaos("analyze", "no-such-file.h5")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
