"""Runs nobody can afford are refused up front, in one line, before any array or file exists; the plan
behind that refusal (``--dry-run``) matches the file and the memory a real run takes."""
import hashlib
import json
import subprocess
import sys

import pytest

from test_cli import TINY, assert_one_line_error, gdchaos

HUGE = [
    (["--ics", "99999999999999999999999"], "ics: must be an integer in [1, 2147483647]"),
    (["--tau-epochs", "1000000000000"], "tau_epochs: must be an integer in [201, 2147483646]"),
    (["--epochs", "100000000"], "one ball's distance curves would take 20.0 GB, more than HDF5 stores in one chunk"),
    (["--hidden", "1000000000"], "one network's parameters would take 64.0 GB"),
    (["--etas", "1:2:10000000000"], "etas: N must be an integer in [1, 100,000]"),
    (["--ics", "2147483647"], "of it for the bootstrap; this machine has"),
    (["--hidden", "20000,20000", "--replicas", "100000"], "of it for the parameters; this machine has"),
    (["--etas", "log:0.01:10:100000", "--ics", "1000", "--replicas", "100"],
     "choose another -o, or lower --ics, --replicas, --epochs or --etas"),
]


@pytest.mark.parametrize("args, fragment", HUGE, ids=[" ".join(args) for args, _ in HUGE])
def test_unaffordable_runs_are_refused_before_anything_exists(tmp_path, args, fragment):
    assert_one_line_error(gdchaos("run", "--headless", "-o", "x.h5", *args, cwd=tmp_path), fragment)
    assert list(tmp_path.iterdir()) == []


def test_analysis_bootstrap_size_is_bounded(tmp_path):
    (tmp_path / "c.toml").write_text("[analysis]\nn_boot = 1000000000\n")
    assert_one_line_error(gdchaos("run", "--headless", "--config", "c.toml", cwd=tmp_path),
                          "analysis.n_boot: must be an integer in [0, 100000]")


def test_a_refused_run_leaves_the_existing_file_as_it_was(tmp_path):
    assert gdchaos("run", "--headless", "-o", "r.h5", *TINY, cwd=tmp_path).returncode == 0
    before = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in tmp_path.iterdir()}
    for args in (["--ics", "2147483647"], ["--ics", "3"], ["--ics", "3", "--epochs", "100000000", "--overwrite"]):
        result = gdchaos("run", "--headless", "-o", "r.h5", *TINY, *args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
    after = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in tmp_path.iterdir()}
    assert after == before


def _peak_rss_run(tmp_path, *args) -> tuple[subprocess.CompletedProcess, int]:
    """Run gdchaos in a child that reports its own peak resident size (bytes) on its last stderr line."""
    # VmHWM, not ru_maxrss: Linux carries the parent's (pytest's) peak over into ru_maxrss across exec
    # an exit handler: gdchaos ends the process itself once they have run (gdchaos.cli.exit_quickly)
    code = ("import atexit, re, runpy, sys\n"
            "def peak():\n    status = open('/proc/self/status').read()\n"
            "    print(int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) * 1024, file=sys.stderr)\n"
            "atexit.register(peak)\n"
            "runpy.run_module('gdchaos', run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300)
    return result, int(result.stderr.strip().splitlines()[-1])


def test_dry_run_plans_the_file_and_memory_a_run_takes(tmp_path):
    args = ["run", "--headless", "-o", "r.h5", *TINY]
    dry = gdchaos(*args, "--dry-run", "--json", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert {"units", "networks", "peak_memory_mb", "file_mb", "estimated_seconds"} <= set(plan)
    assert plan["networks"] == 2 * 2 * 3 and plan["refused"] is None
    assert not (tmp_path / "r.h5").exists()
    warm = gdchaos("run", "--headless", "-o", "warm.h5", *TINY, cwd=tmp_path)  # compiles what is not cached
    assert warm.returncode == 0, warm.stderr
    (tmp_path / "warm.h5").unlink()
    result, peak = _peak_rss_run(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    size = (tmp_path / "r.h5").stat().st_size
    assert size <= plan["file_mb"] * 1e6 <= size + 1.1e6  # every array allocated; the rest is metadata
    assert peak <= plan["peak_memory_mb"] * 1e6 <= 3 * peak  # compiled kernels: conservative, not wildly so


def test_dry_run_says_why_a_run_would_be_refused(tmp_path):
    dry = gdchaos("run", "--headless", "--ics", "2147483647", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 2
    assert "networks" in dry.stdout and "for the bootstrap" in dry.stderr
