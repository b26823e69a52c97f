"""Units on Dask workers: the same bits as a serial run and as merged shards, a worker killed mid-unit,
a run stopped by SIGTERM and resumed, data that does not match the file's fingerprint."""
import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("distributed")

import cloudpickle  # installed with distributed

from gdchaos import presets, runner, store
from gdchaos.cluster import start
from gdchaos.config import from_dict, load_toml
from gdchaos.engine.compute import compute_unit, machine
from gdchaos.errors import GdchaosError
from gdchaos.store.merge import merge

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import test modules


def sweep(path, **overrides):
    """6 units (3 ICs x 2 learning rates, one of them diverging), two ICs' trajectories, sharpness."""
    values = dict(etas=[0.5, 40.0], ics=3, replicas=2, epochs=24, tau_epochs=60, ics_per_unit=1, etas_per_unit=1,
                  save_trajectories=True, trajectory_ics=[0, 2], trajectory_every=6, sharpness_every=8,
                  output=str(path))
    values.update(overrides)
    return from_dict(values, presets.get("iris-tanh")).validate()


def datasets(path) -> dict[str, np.ndarray]:
    """Every dataset of a file, by name (groups included)."""
    found = {}
    with h5py.File(path, "r", locking=False) as handle:
        handle.visititems(lambda name, item: found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset)
                          else None)
    return found


def assert_same_bits(path_a, path_b):
    a, b = datasets(path_a), datasets(path_b)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), f"{name} differs"


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The reference: the sweep run in this process (this also compiles the kernels the workers copy)."""
    return runner.run(sweep(tmp_path_factory.mktemp("serial") / "serial.h5")).path


@pytest.fixture(scope="module")
def workers(serial):
    """Two worker processes of one thread each, shared by the tests of this module."""
    with start.local(2, 1) as executor:
        yield executor


def test_serial_workers_and_merged_shards_give_the_same_bits(serial, workers, tmp_path):
    outcome = runner.run(sweep(tmp_path / "workers.h5"), executor=workers)
    assert outcome.complete and outcome.units_run == 6
    assert_same_bits(serial, outcome.path)
    parts = []
    for k in (1, 2):
        shard = runner.run(sweep(tmp_path / f"part-{k}.h5"), shard=(k, 2))
        assert not shard.complete and shard.units_run == 3
        with h5py.File(shard.path, "r", locking=False) as handle:  # units 0, 2, 4 or 1, 3, 5
            assert np.flatnonzero(handle["unit_done"][:]).tolist() == list(range(k - 1, 6, 2))
        parts.append(shard.path)
    merged = merge(parts, tmp_path / "merged.h5")
    assert merged.complete and merged.units_copied == 6
    assert_same_bits(serial, merged.path)
    with store.open(merged.path) as run:  # recorded per unit: this machine computed everything
        host, cpu = machine()
        assert run.file["unit_host"][:].astype(str).tolist() == [host] * 6
        assert run.file["unit_cpu"][:].astype(str).tolist() == [cpu[:96]] * 6
        assert np.isfinite(run.summary()["lambda_mean"]).all()


def test_resume_submits_only_pending_units(serial, workers, tmp_path):
    path = tmp_path / "resumed.h5"
    runner.run(sweep(path), shard=(2, 3))  # units 1 and 4 done
    outcome = runner.run(sweep(path), executor=workers)
    assert outcome.units_run == 4
    assert_same_bits(serial, path)


def test_an_existing_scheduler_computes_the_same_file(serial, workers, tmp_path):
    with start.connect(workers.client.scheduler.address, threads=1) as executor:
        outcome = runner.run(sweep(tmp_path / "scheduler.h5"), executor=executor)
    assert outcome.units_run == 6
    assert_same_bits(serial, outcome.path)
    assert workers.client.status == "running"  # the cluster belongs to whoever started it


def die_mid_unit(marker: str, config_json, unit, fingerprint, topic):
    """compute_unit that kills its own worker process at epoch 10 of unit 3, once."""
    def progress(event):
        if unit.index == 3 and event.epoch == 10 and not os.path.exists(marker):
            Path(marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    return compute_unit(config_json, unit, fingerprint, progress)


def test_a_worker_killed_mid_unit_is_replaced_and_the_file_is_the_same(serial, workers, tmp_path):
    marker, original = tmp_path / "killed", workers.function
    workers.function = functools.partial(die_mid_unit, str(marker))
    try:
        outcome = runner.run(sweep(tmp_path / "killed.h5"), executor=workers)
    finally:
        workers.function = original
    assert marker.exists(), "no worker was killed"
    assert int(marker.read_text()) != os.getpid()
    assert outcome.complete and outcome.units_run == 6
    assert_same_bits(serial, outcome.path)


def test_workers_refuse_data_other_than_the_files(workers, tmp_path):
    config = sweep(tmp_path / "x.h5")
    units = [unit for unit, _ in zip(runner.prepare(config)[2], range(2))]
    with pytest.raises(GdchaosError, match=r"unit 0: dataset: iris on worker .* has fingerprint [0-9a-f]{16}, "
                                           r"the results file 0000000000000000.*\(and 1 more\).*rerun"):
        list(workers.results(config, units, "0" * 16))


def run_command(config_path, output, *extra):
    return [sys.executable, "-m", "gdchaos", "run", "--headless", "--config", str(config_path), "-o", str(output),
            "--quiet", *extra]


def test_sigterm_stops_workers_and_a_rerun_finishes_the_same_file(tmp_path):
    config = tmp_path / "config.toml"  # 8 units of about 0.4 s each
    config.write_text("etas = [0.5, 10.0]\nics = 4\nreplicas = 120\nepochs = 600\ntau_epochs = 600\n"
                      "ics_per_unit = 1\netas_per_unit = 1\nseed = 3\n")
    output, reference = tmp_path / "stopped.h5", tmp_path / "reference.h5"
    process = subprocess.Popen(run_command(config, output, "--workers", "2", "--threads-per-worker", "1"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
        try:
            with store.open(output) as live:
                if live.progress()[0] >= 1:
                    break
        except (GdchaosError, OSError, ValueError, KeyError):
            continue
    assert process.poll() is None, "the run ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "rerun the same command to resume" in err and "Traceback" not in err
    with h5py.File(output, "r") as handle:  # closed cleanly by the one writer
        assert 1 <= handle["unit_done"][:].sum() < 8
    finished = subprocess.run(run_command(config, output, "--workers", "2"), capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0, finished.stderr
    runner.run(from_dict({"output": str(reference)}, load_toml(config, presets.get("iris-tanh"))))
    assert_same_bits(reference, output)


def worker_settings():
    import numba
    return numba.config.NUMBA_NUM_THREADS, os.environ["OPENBLAS_NUM_THREADS"], numba.config.CACHE_DIR


def test_each_worker_has_its_threads_and_a_numba_cache_of_its_own(workers):
    settings = list(workers.client.run(worker_settings).values())
    assert [threads for threads, _, _ in settings] == [1, 1] and [blas for _, blas, _ in settings] == ["1", "1"]
    caches = [Path(cache) for _, _, cache in settings]
    assert len(set(caches)) == 2 and all(cache.name.startswith("slot-") for cache in caches)
