"""The command line as a user meets it: subprocesses, exit codes, one-line errors."""
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

TINY = ["--etas", "1,10", "--ics", "2", "--replicas", "2", "--epochs", "20", "--tau-epochs", "30", "--quiet"]


def gdchaos(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gdchaos", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_help_and_version():
    assert gdchaos("--help").returncode == 0
    version = gdchaos("--version")
    assert version.returncode == 0 and version.stdout.startswith("gdchaos ")


@pytest.mark.parametrize("args, fragments", [
    (["--preset", "mnist-nope"], ["preset", "iris-tanh"]),
    (["--dataset", "imagenet"], ["dataset", "mnist"]),
    (["--activation", "gelu"], ["model.activation", "tanh, sigmoid, relu"]),
    (["--etas", "0,1"], ["etas", "> 0"]),
    (["--etas=-1:2:3"], ["etas", "> 0"]),
    (["--etas", "log:0:1:3"], ["etas", "log"]),
    (["--etas", "a,b"], ["etas"]),
    (["--eps", "0"], ["eps", "> 0"]),
    (["--eps", "1e-9", "--dtype", "float32"], ["eps", "too small for float32"]),
    (["--epochs", "1"], ["epochs", ">= 2"]),
    (["--target", "1.5"], ["target", "(0, 1]"]),
    (["--target", "0"], ["target", "(0, 1]"]),
    (["--ics", "0"], ["ics", ">= 1"]),
    (["--seed", str(2**63)], ["seed: must be an integer in [0, 9223372036854775807]; got 9223372036854775808"]),
    (["--hidden", "0"], ["model.hidden"]),
    (["--ics", "x"], ["argument --ics: must be an integer; got 'x'"]),
    (["--eps", "tiny"], ["argument --eps: must be a number; got 'tiny'"]),
    (["--config", "missing.toml"], ["config", "missing.toml"]),
    (["-o", "/proc/forbidden/run.h5"], ["output", "cannot write"]),
    (["--tangent-k", "-1"], ["tangent_k: must be an integer >= 0; got -1"]),
    (["--tangent-k", "84"], ["tangent_k: must be an integer in [0, 83]; got 84"]),  # Iris 4-10-3: P = 83
    (["--tangent-qr-every", "0"], ["tangent_qr_every: must be an integer >= 1; got 0"]),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, fragments):
    assert_one_line_error(gdchaos("run", "--headless", *args, cwd=tmp_path), *fragments)


@pytest.mark.parametrize("content, fragment", [
    (b'perturb_biases = "no"\n', "perturb_biases: must be true or false; got 'no'"),
    (b"save_trajectories = 1\n", "save_trajectories: must be true or false; got 1"),
    (b"output = 5\n", "output: must be a string; got 5"),
    (b'output = ["a.h5"]\n', "output: must be a string; got ['a.h5']"),
    (b"", "sets nothing; start from `gdchaos config show PRESET`"),
    (b"\x7fELF\x02\x01\x01\x00\xff\xfe", "is not a text file (TOML is UTF-8)"),
    (b"[model]\nhidden = [1.5]\n", "model.hidden: integers >= 1 such as 64 or 32,32; got [1.5]"),
    (b"[model]\nhidden = [true]\n", "model.hidden: integers >= 1 such as 64 or 32,32; got [True]"),
    (b'[model]\nhidden = "10,,10"\n', "model.hidden: integers >= 1 such as 64 or 32,32; got '10,,10'"),
    (b"[model]\nlayers = [1, 2]\n", "model.layers: must be a list of layer tables ([[model.layers]]); got [1, 2]"),
    (b"model = 5\n", "model: must be a table of model settings ([model]); got 5"),
], ids=["bool-from-text", "bool-from-int", "output-int", "output-list", "empty", "binary", "hidden-float",
        "hidden-bool", "hidden-empty-item", "layers-ints", "model-int"])
def test_toml_values_of_the_wrong_type_are_refused(tmp_path, content, fragment):
    (tmp_path / "c.toml").write_bytes(content)
    assert_one_line_error(gdchaos("run", "--headless", "--config", "c.toml", cwd=tmp_path), fragment)


def test_bad_toml_and_unknown_field(tmp_path):
    (tmp_path / "bad.toml").write_text("ics = [\n")
    assert_one_line_error(gdchaos("run", "--headless", "--config", "bad.toml", cwd=tmp_path), "not valid TOML")
    (tmp_path / "unknown.toml").write_text("icz = 3\n")
    assert_one_line_error(gdchaos("run", "--headless", "--config", "unknown.toml", cwd=tmp_path), "icz")
    (tmp_path / "fit.toml").write_text("[analysis]\nr2_min = 3\n")
    assert_one_line_error(gdchaos("run", "--headless", "--config", "fit.toml", cwd=tmp_path), "analysis.r2_min")


def test_main_job_defaults_to_iris_tanh_in_current_folder(tmp_path):
    result = gdchaos("run", "--headless", *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "iris-tanh.h5"
    assert (tmp_path / "iris-tanh.h5").exists()
    assert "lambda" in result.stdout  # the summary table


def test_plain_log_lines_when_not_a_terminal(tmp_path):
    args = [a for a in TINY if a != "--quiet"]
    result = gdchaos("run", "--headless", *args, "-o", "log.h5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sweep log.h5" in result.stdout and "unit 1/1 done" in result.stdout
    assert "\x1b[" not in result.stdout.split("log.h5\n", 1)[0]  # no terminal escape codes in logs


def test_mismatched_existing_file_and_overwrite(tmp_path):
    assert gdchaos("run", "--headless", *TINY, "-o", "r.h5", cwd=tmp_path).returncode == 0
    again = gdchaos("run", "--headless", *TINY, "-o", "r.h5", cwd=tmp_path)
    assert again.returncode == 0  # same config: resumes (nothing left to do)
    other = [*TINY[:-1], "--seed", "5", "--quiet"]
    assert_one_line_error(gdchaos("run", "--headless", *other, "-o", "r.h5", cwd=tmp_path), "different config",
                          "seed", "--overwrite")
    assert gdchaos("run", "--headless", *other, "-o", "r.h5", "--overwrite", cwd=tmp_path).returncode == 0
    (tmp_path / "not-ours.h5").write_text("hello")
    assert_one_line_error(gdchaos("run", "--headless", *TINY, "-o", "not-ours.h5", cwd=tmp_path), "not-ours.h5")


def test_config_show_roundtrips_every_preset(tmp_path):
    presets = gdchaos("presets")
    assert presets.returncode == 0
    for name in ("iris-tanh", "mnist-tanh", "mnist-deep", "mnist-l2", "mnist-cnn", "cifar10-relu"):
        assert name in presets.stdout
        shown = gdchaos("config", "show", name)
        assert shown.returncode == 0
        (tmp_path / f"{name}.toml").write_text(shown.stdout)
        from gdchaos import presets as preset_module
        from gdchaos.config import load_toml

        loaded, preset = load_toml(tmp_path / f"{name}.toml"), preset_module.get(name)
        assert loaded.identity() == preset.identity() and loaded.output == preset.output
        assert loaded.fit_params() == preset.fit_params()  # the TOML spells out every default


def test_analyze_json_and_refit_options(tmp_path):
    assert gdchaos("run", "--headless", *TINY, "-o", "r.h5", cwd=tmp_path).returncode == 0
    result = gdchaos("analyze", "r.h5", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["eta"] for row in rows] == [1.0, 10.0]
    for key in ("eta", "lambda_mean", "lambda_std", "rho", "tau_mean", "tau_std", "n_reached", "n_ic"):
        assert key in rows[0]
    strict = json.loads(gdchaos("analyze", "r.h5", "--json", "--r2-min", "1.0", cwd=tmp_path).stdout)
    assert all(row["rho"] == 0 for row in strict)
    assert_one_line_error(gdchaos("analyze", "r.h5", "--r2-min", "7", cwd=tmp_path), "r2_min")
    (tmp_path / "junk.h5").write_bytes(b"\0" * 100)
    assert_one_line_error(gdchaos("analyze", "junk.h5", cwd=tmp_path), "junk.h5")


def test_analyze_reads_the_authors_files(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(202)
    growth = np.minimum(0.5 * t, 12.0)  # exponential at rate 0.5, saturating at t = 24
    weights = 1e-4 * np.exp(growth)[None, None, None, :] * rng.lognormal(0, 0.02, (1, 4, 5, 202))
    with h5py.File(tmp_path / "eta10.h5", "w") as handle:
        handle.create_dataset("weights", data=weights)
        handle.attrs.update(learning_rate=10.0, num_epochs=201, n_init=4, num_pert=5, epsilon=1e-8)
    result = gdchaos("analyze", "eta10.h5", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["eta"] == 10.0 and row["n_ic"] == 4 and row["tau_mean"] is None
    assert row["lambda_mean"] == pytest.approx(0.5, rel=0.03) and row["rho"] == 100.0


def test_analyze_norm_l2_needs_and_uses_trajectories(tmp_path):
    assert gdchaos("run", "--headless", *TINY, "-o", "plain.h5", cwd=tmp_path).returncode == 0
    assert_one_line_error(gdchaos("analyze", "plain.h5", "--norm", "l2", cwd=tmp_path), "--save-trajectories")
    saved = gdchaos("run", "--headless", *TINY, "--save-trajectories", "-o", "traj.h5", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    l1 = json.loads(gdchaos("analyze", "traj.h5", "--json", cwd=tmp_path).stdout)
    l2 = json.loads(gdchaos("analyze", "traj.h5", "--json", "--norm", "l2", cwd=tmp_path).stdout)
    assert [row["n_ic"] for row in l2] == [2, 2]
    assert [row["lambda_mean"] for row in l2] != [row["lambda_mean"] for row in l1]
