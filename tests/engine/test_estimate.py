"""Run-time estimates (gdchaos.engine.estimate) are measured on this machine and scale with the work."""
import subprocess
import sys
import time

import numpy as np
import pytest

from gdchaos import data
from gdchaos.config import from_dict
from gdchaos.engine import estimate
from gdchaos.nn import MLP


def _config(**values):
    base = {"dataset": "iris", "etas": [0.1, 1.0], "ics": 4, "replicas": 2, "epochs": 20,
            "tau_epochs": 20, "model": {"hidden": [10]}}
    base.update(values)
    return from_dict(base)


def test_estimate_scales_with_learning_rates_ics_and_epochs():
    start = estimate.calibration(_config()).start
    fixed = estimate.overhead_seconds(_config(), start)
    one = estimate.estimate_seconds(_config()) - fixed
    assert one > 0
    longer = estimate.estimate_seconds(_config(epochs=41, tau_epochs=41)) - fixed  # 42 epochs, not 21
    assert abs(longer - one * 42 / 21) < 1e-9 * one
    assert estimate.overhead_seconds(_config(ics=8), start) > fixed  # one fit per ball


@pytest.mark.slow  # compares a prediction with a timed run: only meaningful on a quiet machine
def test_estimate_is_within_thirty_percent_of_a_run(tmp_path, monkeypatch):
    """End to end, as a user runs it: a fresh process (start-up included), kernels already cached."""
    monkeypatch.setenv("GDCHAOS_CACHE", str(tmp_path))
    config = _config(etas=[0.1, 0.5, 1.0, 2.0, 5.0, 10.0], ics=100, replicas=5, epochs=200, tau_epochs=200,
                     output=str(tmp_path / "timed.h5"))
    predicted = estimate.estimate_seconds(config)
    path = tmp_path / "timed.toml"
    path.write_text(config.to_toml())
    command = [sys.executable, "-m", "gdchaos", "run", "--headless", "--quiet", "--overwrite", "--config", str(path)]
    subprocess.run(command, check=True, capture_output=True)  # loads (or compiles) the kernels
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    measured = time.perf_counter() - started
    assert 0.7 * measured < predicted < 1.3 * measured


def test_probe_costs_a_ball_epoch_per_network_near_a_real_one():
    """The probe's c_ball against one timed full-batch evaluation of the same networks (a gradient is
    most of an epoch's work): the same order, so the scaling from its sample subset holds."""
    x, y, _, _ = data.load("iris")
    model = MLP((4, 10, 3))
    theta = model.init(np.random.default_rng(0), 24)
    model.evaluate(theta, x, y)
    times = []
    for _ in range(20):  # the fastest call: other processes on the machine only slow calls down
        start = time.perf_counter()
        model.evaluate(theta, x, y)
        times.append(time.perf_counter() - start)
    ball_cost, tau_cost = estimate.network_epoch_seconds(_config(etas=[0.1, 1.0], ics=4, replicas=5))
    assert min(times) / 24 / 20 < ball_cost < min(times) / 24 * 20 and tau_cost > 0


def test_calibration_is_stored_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("GDCHAOS_CACHE", str(tmp_path))
    config = _config(model={"hidden": [7]})
    assert estimate.estimate_seconds(config, measure=False) is None and estimate.stale(config)
    measured = estimate.estimate_seconds(config)
    assert estimate.calibration_path().exists() and not estimate.stale(config)

    def no_measuring(*args):
        raise AssertionError("measured again")

    monkeypatch.setattr(estimate, "_timed_probe", no_measuring)
    assert estimate.estimate_seconds(config, measure=False) == measured == estimate.estimate_seconds(config)
    estimate.calibration_path().write_text("{not json")  # a damaged file is only a missing hint
    assert estimate.estimate_seconds(config, measure=False) is None


def test_start_up_is_measured_by_tiny_runs_in_fresh_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("GDCHAOS_CACHE", str(tmp_path))
    runs = []
    real_run = subprocess.run

    def timed(command, **options):
        begun = time.perf_counter()
        done = real_run(command, **options)
        runs.append((time.perf_counter() - begun, command, options["env"][estimate.BACKGROUND_ENV], done))
        return done

    monkeypatch.setattr(estimate.subprocess, "run", timed)
    assert estimate.start_seconds("iris", measure=False) is None
    start = estimate.start_seconds("iris")
    assert len(runs) == estimate.START_RUNS and all(done.returncode == 0 for *_, done in runs)
    assert all(command[1:4] == ["-m", "gdchaos", "run"] and background == "0" for _, command, background, _ in runs)
    assert start == pytest.approx(min(seconds for seconds, *_ in runs), abs=0.05)  # timed around the same call
    assert estimate.start_seconds("iris") == start and len(runs) == estimate.START_RUNS  # stored: once per data set
    config = _config(model={"hidden": [6]})
    assert estimate.calibration(config).start == start
    assert estimate.estimate_seconds(config) - estimate.overhead_seconds(config, start) > 0


def test_start_up_is_unknown_when_the_tiny_run_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("GDCHAOS_CACHE", str(tmp_path))
    monkeypatch.setattr(estimate.subprocess, "run",
                        lambda command, **options: subprocess.CompletedProcess(command, 2, b"", b"error"))
    assert estimate.start_seconds("iris") is None
    assert estimate.overhead_seconds(_config(), None) == estimate.overhead_seconds(_config(), estimate.START_SECONDS)


def test_threads_asking_at_once_measure_the_start_up_once(tmp_path, monkeypatch):
    import threading

    monkeypatch.setenv("GDCHAOS_CACHE", str(tmp_path))
    calls = []

    def slow(command, **options):
        calls.append(command)
        time.sleep(0.2)
        return subprocess.CompletedProcess(command, 0, b"", b"")

    monkeypatch.setattr(estimate.subprocess, "run", slow)
    threads = [threading.Thread(target=estimate.start_seconds, args=("iris",)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == estimate.START_RUNS


def test_a_missing_start_up_makes_a_calibration_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("GDCHAOS_CACHE", str(tmp_path))
    config = _config(model={"hidden": [4]})
    estimate.store_calibration(estimate.calibration_key(config), estimate.Calibration(2e-6, 3e-6, 0.0))
    assert estimate.stale(config)  # the costs are here, the start-up is not
    monkeypatch.setattr(estimate, "_timed_tiny_runs", lambda dataset, data_dir: 0.7)
    assert estimate.calibration(config) == estimate.Calibration(2e-6, 3e-6, 0.0, 0.7) and not estimate.stale(config)


def test_costs_measured_with_another_engine_are_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv("GDCHAOS_CACHE", str(tmp_path))
    monkeypatch.setattr(estimate, "_timed_tiny_runs", lambda dataset, data_dir: 0.7)
    config = _config(model={"hidden": [4]})
    estimate.store_calibration(estimate.calibration_key(config), estimate.Calibration(2e-6, 3e-6, 0.0))
    estimate.calibration(config)  # measures and stores the start-up
    assert not estimate.stale(config)
    monkeypatch.setattr(estimate, "engine_revision", lambda: "a-newer-engine")  # the kernels changed
    assert estimate.stale(config)
    assert estimate.calibration(config, measure=False) is None


def test_the_engine_revision_follows_the_kernels_source():
    revision = estimate.engine_revision()
    assert len(revision) == 12 and revision in estimate.calibration_key(_config())


def _snapshot(wall, machine, own):
    return estimate.CpuSnapshot(wall, machine, own)


def test_others_share_is_what_the_machine_spent_beyond_this_process():
    before = _snapshot(10.0, 100.0, 5.0)
    # 2 s on 2 cores: the machine spent 3 CPU-seconds, this process 1 of them
    assert estimate.others_share(before, _snapshot(12.0, 103.0, 6.0), cores=2) == pytest.approx(0.5)
    assert estimate.others_share(before, _snapshot(12.0, 101.0, 6.0), cores=2) == 0.0  # alone
    assert estimate.others_share(before, _snapshot(12.0, 120.0, 5.0), cores=2) == 1.0  # clipped
    assert estimate.others_share(before, _snapshot(12.0, None, 6.0), cores=2) is None  # no /proc/stat


@pytest.mark.skipif(not estimate.MACHINE_STAT.exists(), reason="needs /proc/stat")
def test_cpu_snapshots_see_another_process_spinning():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        before = estimate.cpu_snapshot()
        time.sleep(1.0)
        after = estimate.cpu_snapshot()
    finally:
        spinner.kill()
        spinner.wait()
    cores = estimate.os.cpu_count()
    assert estimate.others_share(before, after) > 0.6 / cores  # one of the machine's cores, busy


def test_a_disturbed_timing_is_taken_again_and_the_quickest_kept(monkeypatch):
    # each call of the work spans two snapshots: (wall, machine CPU, own CPU) on 2 cores
    def run(snapshots, tries=3):
        queue = [_snapshot(*values) for values in snapshots]
        calls = []
        monkeypatch.setattr(estimate, "cpu_snapshot", lambda: queue.pop(0))
        monkeypatch.setattr(estimate.os, "cpu_count", lambda: 2)
        return estimate.timed_quietly(lambda: calls.append(1), tries), len(calls)

    busy, quiet = (0, 0, 0, 3, 5, 2), (0, 0, 0, 2, 4, 4)  # others took 0.5, then 0 of the machine
    (seconds, share), calls = run([busy[:3], busy[3:], quiet[:3], quiet[3:]])
    assert (seconds, share, calls) == (2, 0.0, 2)
    slow, less = (0, 0, 0, 4, 8, 4), (0, 0, 0, 3, 5, 3)  # others took 0.5 and 1/3: both disturbed
    (seconds, share), calls = run([slow[:3], slow[3:], less[:3], less[3:]], tries=2)
    assert (seconds, calls) == (3, 2) and share == pytest.approx(1 / 3)


def test_a_disturbed_calibration_is_stale_and_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv("GDCHAOS_CACHE", str(tmp_path))
    config = _config(model={"hidden": [5]})
    key = estimate.calibration_key(config)
    monkeypatch.setattr(estimate, "_timed_tiny_runs", lambda dataset, data_dir: 0.5)
    assert estimate.start_seconds("iris") == 0.5  # the start-up is known: only the costs are in question
    estimate.store_calibration(key, estimate.Calibration(2e-5, 1e-5, 0.6))
    assert estimate.stale(config)
    hint = estimate.estimate_seconds(config, measure=False)  # a disturbed probe still answers
    assert hint == pytest.approx(estimate.estimate_seconds(_config(model={"hidden": [5]}), measure=False))
    probes = []

    def quiet_probe(*args):
        probes.append(args)
        return estimate.Calibration(1e-5, 0.5e-5, 0.02)

    monkeypatch.setattr(estimate, "_timed_probe", quiet_probe)
    monkeypatch.setattr(estimate, "busy_now", lambda: True)  # still busy: probing again would not help
    assert estimate.estimate_seconds(config) == hint and not probes
    monkeypatch.setattr(estimate, "busy_now", lambda: False)
    measured = estimate.estimate_seconds(config)
    assert len(probes) == 1 and measured < hint and not estimate.stale(config)
    assert estimate.estimate_seconds(config) == measured and len(probes) == 1  # the quiet one is kept


def test_the_background_refresh_waits_for_a_quiet_machine_to_replace_a_disturbed_probe(tmp_path, monkeypatch):
    from gdchaos import presets

    monkeypatch.setenv("GDCHAOS_CACHE", str(tmp_path))
    monkeypatch.setattr(estimate.os, "nice", lambda increment: 0)  # not this test process
    group = tmp_path / "autogroup"
    monkeypatch.setattr(estimate, "AUTOGROUP", str(group))  # nor its session
    key = estimate.calibration_key(presets.get("iris-tanh"))
    estimate.store_calibration(key, estimate.Calibration(2e-5, 1e-5, 0.6))
    probes = []
    monkeypatch.setattr(estimate, "_timed_probe", lambda *args: probes.append(args) or estimate.Calibration(1e-5, 1e-5, 0.0))
    monkeypatch.setattr(estimate, "busy_now", lambda: True)
    assert estimate.main(["iris-tanh"]) == 0 and not probes  # kept: still busy
    assert group.read_text() == "19"  # the probe's session yields to every other session
    monkeypatch.setattr(estimate, "busy_now", lambda: False)
    monkeypatch.setattr(estimate, "_timed_tiny_runs", lambda dataset, data_dir: 0.8)
    assert estimate.main(["iris-tanh"]) == 0 and len(probes) == 1
    assert estimate.read_calibration()[key]["others"] == 0.0
    assert estimate.start_seconds("iris", measure=False) == 0.8  # the start-up is measured with it
