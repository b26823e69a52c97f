"""`gdchaos find-lr` and `gdchaos run --etas auto` as a user meets them: subprocesses, JSON, exit codes."""
import json
import subprocess
import sys

import numpy as np
import pytest

from gdchaos import store

PROBE = ["--method", "ball", "--replicas", "2", "--ics", "4", "--epochs", "40", "--points", "5", "--refine", "2"]
KEYS = {"method", "target_rho", "ics", "epochs", "rows", "suggestions", "bracket", "sharpness_init", "notes",
        "monotone", "validation", "seconds", "probe_seconds", "path"}
ROW_KEYS = {"eta", "ics", "chaotic", "rho", "rho_low", "rho_high", "lambda_mean", "lambda_std", "diverged", "round"}


def gdchaos(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gdchaos", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    folder = tmp_path_factory.mktemp("find-lr-cli")
    result = gdchaos("find-lr", "--preset", "iris-tanh", *PROBE, "--json", "-o", "probe.h5", cwd=folder)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), folder


def test_json_has_every_row_and_suggestion(probe):
    values, folder = probe
    assert set(values) == KEYS
    assert set(values["suggestions"]) == {"onset", "first_chaos", "eos_init", "divergence"}
    assert len(values["rows"]) == 5 + 2 and all(set(row) == ROW_KEYS for row in values["rows"])
    assert values["suggestions"]["onset"] is not None
    assert values["path"] == "probe.h5" and (folder / "probe.h5").exists()
    assert 0 < values["probe_seconds"] <= values["seconds"] < values["probe_seconds"] + 1  # no validation


def test_table_output_and_rerun_reuses_the_scan(probe):
    _, folder = probe
    result = gdchaos("find-lr", "--preset", "iris-tanh", *PROBE, "-o", "probe.h5", cwd=folder)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("onset", "first_chaos", "eos_init", "divergence", "rho %", "95% (Wilson)"):
        assert name in out
    assert "<- onset" in out and "scan: 5 learning rates" in result.stderr


def test_run_etas_auto_centres_on_the_stored_onset(probe):
    values, folder = probe
    onset = values["suggestions"]["onset"]
    result = gdchaos("run", "--headless", "--quiet", "--etas", "auto:3", "--find-lr", "probe.h5", "--ics", "2",
                     "--replicas", "1", "--epochs", "10", "--tau-epochs", "10", "-o", "centred.h5", cwd=folder)
    assert result.returncode == 0, result.stderr
    with store.open(folder / "centred.h5") as results:
        assert results.eta == pytest.approx(np.geomspace(onset / 4, onset * 4, 3))


@pytest.mark.parametrize("args, fragment", [
    (["find-lr", "--method", "fft"], "method: must be one of tangent, ball; got 'fft'"),
    (["find-lr", "--target-rho", "0"], "target_rho: must be a finite number in (0, 1]"),
    (["find-lr", "--refine", "-1"], "refine: must be an integer in [0, 30]"),
    (["find-lr", "--activation", "gelu"], "model.activation"),
    (["run", "--etas", "auto:x"], "--etas: must be auto or auto:N"),
    (["run", "--etas", "1,2", "--find-lr", "x.h5"], "--find-lr: only with --etas auto"),
    (["run", "--etas", "auto", "--find-lr", "missing.h5"], "missing.h5"),
])
def test_bad_input_is_one_line_exit_2(args, fragment, tmp_path):
    result = gdchaos(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and fragment in lines[0], result.stderr


def test_validate_trains_to_the_target_at_the_onset_as_a_sweep_does(probe):
    values, folder = probe
    result = gdchaos("find-lr", "--preset", "iris-tanh", *PROBE, "-o", "validate.h5", "--validate", "--target", "0.8",
                     "--tau-epochs", "300", "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    validated = json.loads(result.stdout)
    onset = validated["suggestions"]["onset"]
    assert onset == values["suggestions"]["onset"]  # the target of tau does not change the probe
    rows = validated["validation"]
    assert 0 < validated["probe_seconds"] < validated["seconds"]  # the probe's time without the validation
    assert [row["factor"] for row in rows] == [0.7, 1.0, 1.4]
    assert [row["eta"] for row in rows] == pytest.approx([0.7 * onset, onset, 1.4 * onset])
    for row in rows:
        assert row["ics"] == 4 and 0 <= row["reached"] <= 4 and row["target"] == 0.8 and row["budget"] == 300
        assert (row["tau_mean"] is None) == (row["reached"] == 0)
    # ground truth: the tau phase of an ordinary sweep of the same initial conditions at the onset
    check = gdchaos("run", "--headless", "--quiet", "--preset", "iris-tanh", "--etas", repr(onset), "--ics", "4",
                    "--replicas", "1", "--epochs", "2", "--target", "0.8", "--tau-epochs", "300", "-o", "check.h5",
                    cwd=folder)
    assert check.returncode == 0, check.stderr
    with store.open(folder / "check.h5") as results:
        reached = results["reached_epoch"][0]
    assert rows[1]["reached"] == int((reached >= 0).sum()) > 0
    assert rows[1]["tau_mean"] == pytest.approx(reached[reached >= 0].mean())
