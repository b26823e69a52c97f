"""Execution flags of gdchaos run that do not go together: exit 2 with one line, before any work."""
import subprocess
import sys

import pytest

BASE = ["run", "--headless", "--etas", "0.5", "--ics", "1", "--epochs", "3", "--quiet"]


def gdchaos(*args, code=None):
    prefix = ["-c", code] if code else ["-m", "gdchaos"]
    return subprocess.run([sys.executable, *prefix, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("flags, message", [
    (["--workers", "0"], "gdchaos: error: --workers: must be an integer >= 1; got 0"),
    (["--shard", "3/2", "-o", "x.h5"], "gdchaos: error: --shard: must be K/N with 1 <= K <= N (e.g. 1/4); got '3/2'"),
    (["--shard", "0/2", "-o", "x.h5"], "gdchaos: error: --shard: must be K/N with 1 <= K <= N (e.g. 1/4); got '0/2'"),
    (["--shard", "1/2"], "gdchaos: error: --shard: give each shard its own file with -o (e.g. -o part-K.h5)"),
    (["--workers", "2", "--shard", "1/2", "-o", "x.h5"],
     "gdchaos run: error: argument --shard: not allowed with argument --workers"),
    (["--workers", "2", "--cluster", "slurm"], "gdchaos run: error: argument --cluster: not allowed with argument --workers"),
    (["--jobs", "4"], "gdchaos: error: --jobs: goes with --cluster"),
    (["--threads-per-worker", "2"], "gdchaos: error: --threads-per-worker: goes with --workers or --scheduler"),
    (["--workers", "2", "--threads-per-worker", "0"], "gdchaos: error: --threads-per-worker: must be an integer >= 1; got 0"),
    (["--cluster", "condor"], "gdchaos run: error: argument --cluster: invalid choice: 'condor' (choose from "),
])
def test_bad_combinations_exit_2_with_one_line(tmp_path, flags, message):
    done = gdchaos(*BASE, *flags)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(message)  # the choices' quoting varies
    assert message.endswith("from ") or done.stderr.strip() == message
    assert not (tmp_path / "x.h5").exists()


def test_without_the_cluster_extra_the_flags_name_it():
    hide = ("import sys; sys.modules['distributed'] = sys.modules['dask_jobqueue'] = None; "
            "from gdchaos.cli import main; sys.exit(main(sys.argv[1:]))")
    for flags, flag in ((["--workers", "2"], "--workers"), (["--scheduler", "tcp://h:8786"], "--scheduler"),
                        (["--cluster", "slurm"], "--cluster")):
        done = gdchaos(*BASE, *flags, code=hide)
        assert done.returncode == 2
        assert done.stderr.strip() == f"gdchaos: error: {flag}: needs the cluster extra: pip install 'gdchaos[cluster]'"
